"""Building blocks shared by the normalizers: canonical Arrow tables, number parsing, body sniffing.

Every table is built from Python/NumPy columns with an explicit schema (never inferred), then
sorted by date with one row per date (the last row of a date wins: within one file the later row
is the provider's correction or the live bar).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa

from cxq_data.arrow_util import (
    arrow_to_int64,
    date_array,
    day_numbers,
    empty_table,
    numpy_to_arrow,
    optional_floats,
    optional_ints,
    strictly_increasing,
)
from cxq_data.errors import DataFormatError, MalformedResponseError
from cxq_data.schema import ACTIONS_SCHEMA, INTRADAY_SCHEMA, PARTITION_SCHEMA
from cxq_data.settings import redact_text

_NULL_TEXT = frozenset({"", "nan", "null", "none", "n/a", "na", "-"})


@dataclass
class BarColumns:
    """Row-wise collected bar values before they become an Arrow table (dates or UTC timestamps)."""

    keys: list[dt.date | dt.datetime] = field(default_factory=list)
    open: list[float | None] = field(default_factory=list)
    high: list[float | None] = field(default_factory=list)
    low: list[float | None] = field(default_factory=list)
    close: list[float | None] = field(default_factory=list)
    adjusted_close: list[float | None] = field(default_factory=list)
    volume: list[int | None] = field(default_factory=list)

    def append(self, key: dt.date | dt.datetime, o: float | None, h: float | None, lo: float | None,
               c: float | None, adj: float | None, vol: int | None) -> None:
        self.keys.append(key)
        self.open.append(o)
        self.high.append(h)
        self.low.append(lo)
        self.close.append(c)
        self.adjusted_close.append(adj)
        self.volume.append(vol)


@dataclass
class ActionRows:
    """Corporate actions keyed by ex-date; dividends on one date add up, split ratios multiply."""

    by_date: dict[dt.date, tuple[float | None, float | None]] = field(default_factory=dict)

    def add(self, date: dt.date, dividend: float | None = None, split_ratio: float | None = None) -> None:
        old_div, old_split = self.by_date.get(date, (None, None))
        if dividend is not None and dividend != 0:
            old_div = (old_div or 0.0) + dividend
        if split_ratio is not None and split_ratio not in (0.0, 1.0):
            old_split = (old_split or 1.0) * split_ratio
        if old_div is not None or old_split is not None:
            self.by_date[date] = (old_div, old_split)


def provider_error(file: object, message: str) -> MalformedResponseError:
    return MalformedResponseError(f"{file}: {redact_text(message)}")


def file_error(file: object, message: str) -> DataFormatError:
    return DataFormatError(f"{file}: {redact_text(message)}")


def error_factory(provider: bool):  # type: ignore[no-untyped-def]
    """``provider_error`` for provider bodies, ``file_error`` for user files."""
    return provider_error if provider else file_error


def decode_text(data: bytes, file: object, provider: bool) -> str:
    """UTF-8 text (BOM stripped) or a clear error; HTML and empty bodies are refused here."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise error_factory(provider)(file, f"not UTF-8 text (byte {exc.start}): binary or wrong encoding") from exc
    check_not_html(text, file, provider)
    if not text.strip():
        raise error_factory(provider)(file, "empty body: no data")
    return text


def load_json(data: bytes, file: object) -> Any:
    """A provider JSON body, or a clear error (HTML page, truncated body ...)."""
    text = decode_text(data, file, provider=True)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise provider_error(
            file, f"truncated or invalid JSON at line {exc.lineno} column {exc.colno} "
            f"(char {exc.pos} of {len(text)}): {exc.msg}"
        ) from None


def check_not_html(text: str, file: object, provider: bool) -> None:
    head = text.lstrip()[:200].lower()
    if head.startswith("<") and ("html" in head or "<head" in head or "<body" in head or "<script" in head):
        title = ""
        low = text.lower()
        if "<title>" in low:
            start = low.index("<title>") + 7
            title = " (title: " + text[start:low.find("</title>", start)].strip()[:80] + ")"
        raise error_factory(provider)(file, f"HTML page instead of data{title}")


def parse_float(text: str, file: object, where: str, provider: bool) -> float | None:
    """A price: ``None`` for empty/NaN markers, else a finite float; anything else is an error."""
    value = text.strip()
    if value.lower() in _NULL_TEXT:
        return None
    try:
        number = float(value)
    except ValueError:
        raise error_factory(provider)(file, f"{where}: not a number: {value[:40]!r}") from None
    if math.isnan(number):
        return None
    if math.isinf(number):
        raise error_factory(provider)(file, f"{where}: infinite value {value!r}")
    return number


def parse_volume(text: str, file: object, where: str, provider: bool) -> int | None:
    number = parse_float(text, file, where, provider)
    return None if number is None else volume_int(number, file, where, provider)


_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def volume_int(number: float, file: object, where: str, provider: bool) -> int:
    """A volume rounded to a BIGINT; out of its range is an error naming the value (it was an
    OverflowError traceback deep in the table builder, which stopped the whole batch)."""
    volume = round(number)
    if not _INT64_MIN <= volume <= _INT64_MAX:
        raise error_factory(provider)(file, f"{where}: volume out of range: {number:g}")
    return volume


def json_number(value: object, file: object, where: str) -> float | None:
    """A number from a JSON array (Yahoo): null stays None; strings or bools are errors."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise provider_error(file, f"{where}: not a number: {str(value)[:40]!r}")
    if math.isnan(value) or math.isinf(value):
        return None
    return float(value)


def last_per_key(keys: np.ndarray, keep_duplicates: bool) -> np.ndarray:
    """Row indices sorted by key; per key only the last row of the input unless keep_duplicates."""
    order = np.argsort(keys, kind="stable")
    if keep_duplicates or len(order) == 0:
        return order
    sorted_keys = keys[order]
    is_last = np.append(sorted_keys[1:] != sorted_keys[:-1], True)
    return order[is_last]


def ingested_column(ingested_at: dt.datetime, n: int) -> pa.Array:
    micros = np.full(n, _epoch_us(ingested_at), dtype=np.int64)  # no per-row datetime objects
    return numpy_to_arrow(micros, pa.timestamp("us", tz="UTC"))


def bars_table(cols: BarColumns, ingested_at: dt.datetime, keep_duplicates: bool = False) -> pa.Table:
    """PARTITION_SCHEMA table from daily BarColumns (keys are ``datetime.date``).

    Rows are picked in Python before anything becomes Arrow: for the short tables of daily updates,
    Arrow casts and takes per column cost several times the work (~150 us a table).
    """
    days = day_numbers(cols.keys)  # type: ignore[arg-type]  # daily keys are dates
    keep = last_per_key(days, keep_duplicates).tolist()
    picked = lambda values: [values[i] for i in keep]
    return pa.Table.from_arrays(
        [date_array(days[keep]),
         *(optional_floats(picked(getattr(cols, name))) for name in _PRICE_FIELDS),
         optional_ints(picked(cols.volume)), ingested_column(ingested_at, len(keep))],
        schema=PARTITION_SCHEMA,
    )


_PRICE_FIELDS = ("open", "high", "low", "close", "adjusted_close")


def bars_from_arrow(dates: pa.Array, prices: dict[str, pa.Array | None], volume: pa.Array | None,
                    ingested_at: dt.datetime, keep_duplicates: bool = False) -> pa.Table:
    """PARTITION_SCHEMA table from Arrow columns (a missing column becomes nulls)."""
    days = arrow_to_int64(dates)
    if strictly_increasing(days):  # the usual file: already in order, one row per date - no takes
        n, pick = len(days), (lambda col: col)
    else:
        idx = numpy_to_arrow(last_per_key(days, keep_duplicates))
        n, pick = len(idx), (lambda col: col.take(idx))
    arrays: list[pa.Array] = [pick(dates.cast(pa.date32()))]
    for name in _PRICE_FIELDS:
        col = prices.get(name)
        arrays.append(pa.nulls(n, pa.float64()) if col is None else pick(col.cast(pa.float64())))
    arrays.append(pa.nulls(n, pa.int64()) if volume is None else pick(volume.cast(pa.int64())))
    arrays.append(ingested_column(ingested_at, n))
    return pa.Table.from_arrays(arrays, schema=PARTITION_SCHEMA)


def intraday_table(cols: BarColumns, ingested_at: dt.datetime, keep_duplicates: bool = False) -> pa.Table:
    """INTRADAY_SCHEMA table from BarColumns whose keys are tz-aware datetimes."""
    micros = np.array([_epoch_us(t) for t in cols.keys], dtype=np.int64)
    idx = numpy_to_arrow(last_per_key(micros, keep_duplicates))
    arrays = [
        numpy_to_arrow(micros, pa.timestamp("us", tz="UTC")).take(idx),
        *(optional_floats(getattr(cols, name)).take(idx) for name in ("open", "high", "low", "close")),
        optional_ints(cols.volume).take(idx),
        ingested_column(ingested_at, len(idx)),
    ]
    return pa.Table.from_arrays(arrays, schema=INTRADAY_SCHEMA)


def _epoch_us(ts: dt.datetime) -> int:
    delta = ts.astimezone(dt.UTC) - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def actions_table(rows: ActionRows, ingested_at: dt.datetime) -> pa.Table:
    dates = sorted(rows.by_date)
    return pa.Table.from_arrays(
        [date_array(dates), optional_floats([rows.by_date[d][0] for d in dates]),
         optional_floats([rows.by_date[d][1] for d in dates]), ingested_column(ingested_at, len(dates))],
        schema=ACTIONS_SCHEMA,
    )


def empty_actions() -> pa.Table:
    return empty_table(ACTIONS_SCHEMA)
