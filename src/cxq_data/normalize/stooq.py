"""Stooq CSV (``stooq_csv``) and Stooq bulk ASCII (``stooq_bulk_txt``) -> canonical bars.

* CSV download: ``Date,Open,High,Low,Close[,Volume]``, ascending ISO dates (stooq.pl: Polish
  header ``Data,Otwarcie,Najwyzszy,Najnizszy,Zamkniecie[,Wolumen]``). ``Volume`` is absent for
  some indices and FX.
* Bulk ASCII (members of ``d_us_txt.zip``): ``<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,
  <CLOSE>,<VOL>,<OPENINT>`` with ``DATE`` = ``YYYYMMDD`` and one ticker per file.

Adjustment basis: Stooq publishes split-adjusted levels (and, irregularly, dividend-adjusted ones,
with volume scaled by the inverse factor). There is no as-traded price and no separate adjusted
series, so ``close`` is stored exactly as Stooq publishes it and ``adjusted_close`` is null. Do not
compare Stooq levels with another source's ``close`` at a tight tolerance; compare returns.
Stooq files carry no corporate actions, so ``actions`` is always empty.

Failure bodies Stooq serves with HTTP 200 (``No data``, ``Exceeded the daily hits limit``, the
API-key page and the proof-of-work HTML) are errors here. Parsing uses Arrow's CSV reader (a 20-year
file takes about a millisecond); when it refuses a file, a line-by-line pass names the line and
column that is wrong.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import math
import re

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cxq_data.arrow_util import arrow_to_int64, date_array
from cxq_data.errors import DataFormatError
from cxq_data.normalize.base import Normalized, ParseRequest
from cxq_data.normalize.tables import (
    BarColumns,
    bars_from_arrow,
    bars_table,
    check_not_html,
    empty_actions,
    parse_float,
    provider_error,
)

BULK_HEADER = ("<TICKER>", "<PER>", "<DATE>", "<TIME>", "<OPEN>", "<HIGH>", "<LOW>", "<CLOSE>", "<VOL>",
               "<OPENINT>")
CSV_HEADER = ("Date", "Open", "High", "Low", "Close", "Volume")
_POLISH = {"Data": "Date", "Otwarcie": "Open", "Najwyzszy": "High", "Najnizszy": "Low", "Zamkniecie": "Close",
           "Wolumen": "Volume"}
_KNOWN_FAILURES = ("No data", "Exceeded the daily hits limit", "get your apikey", "get_apikey")


def first_line(data: bytes) -> str:
    """The first non-empty line (BOM and surrounding blanks stripped)."""
    for line in data[:4096].decode("utf-8-sig", errors="replace").splitlines():
        if line.strip():
            return line.strip()
    return ""


def is_bulk_header(line: str) -> bool:
    return tuple(part.strip().upper() for part in line.split(",")) == BULK_HEADER


def is_stooq_csv_header(line: str) -> bool:
    names = tuple(_POLISH.get(p.strip(), p.strip()) for p in line.split(","))
    return names in (CSV_HEADER, CSV_HEADER[:5])


def _check_body(req: ParseRequest, header_ok: bool, expected: str) -> None:
    text = req.data[:4096].decode("utf-8-sig", errors="replace")
    check_not_html(text, req.name, provider=True)
    if header_ok:
        return
    head = first_line(req.data)
    for failure in _KNOWN_FAILURES:
        if failure.lower() in text.lower():
            raise provider_error(req.name, f"Stooq answered {head[:120]!r} instead of data")
    if not head:
        raise provider_error(req.name, "empty body: no data")
    raise provider_error(req.name, f"line 1: expected header {expected!r}, got {head[:120]!r}")


def parse_stooq_csv(req: ParseRequest) -> Normalized:
    head = first_line(req.data)
    _check_body(req, is_stooq_csv_header(head), ",".join(CSV_HEADER))
    names = [_POLISH.get(p.strip(), p.strip()) for p in head.split(",")]
    types = {"Date": pa.date32(), **{n: pa.float64() for n in names[1:]}}
    table = _read(req, names, types)
    volume = table["Volume"] if "Volume" in names else None
    prices = {name.lower(): table[name] for name in ("Open", "High", "Low", "Close")}
    return _normalized(req, table["Date"], prices, volume)


def parse_stooq_bulk(req: ParseRequest) -> Normalized:
    _check_body(req, is_bulk_header(first_line(req.data)), ",".join(BULK_HEADER))
    small = _small_bulk(req)
    if small is not None:
        return small
    names = list(BULK_HEADER)
    types = {"<TICKER>": pa.string(), "<PER>": pa.string(), "<DATE>": pa.string(), "<TIME>": pa.string(),
             **{n: pa.float64() for n in names[4:]}}
    # <TIME> and <OPENINT> are not used: not converting them halves the parse time.
    table = _read(req, names, types, include=[n for n in names if n not in ("<TIME>", "<OPENINT>")])
    _check_single_daily_ticker(table, req.name)
    prices = {name.lower(): table[f"<{name.upper()}>"] for name in ("Open", "High", "Low", "Close")}
    return _normalized(req, _yyyymmdd(table["<DATE>"], req), prices, table["<VOL>"])


def bulk_ticker(data: bytes) -> str | None:
    """The ``<TICKER>`` of the first data row of a bulk member (None when it has no rows)."""
    lines = data[:8192].decode("utf-8-sig", errors="replace").splitlines()
    rows = [line for line in lines[1:] if line.strip()]
    return rows[0].split(",", 1)[0].strip() if rows else None


def _read(req: ParseRequest, names: list[str], types: dict[str, pa.DataType],
          include: list[str] | None = None) -> pa.Table:
    try:
        return pacsv.read_csv(
            io.BytesIO(req.data),
            read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
            parse_options=pacsv.ParseOptions(ignore_empty_lines=True),
            convert_options=pacsv.ConvertOptions(column_types={k: v for k, v in types.items() if not include
                                                               or k in include}, include_columns=include or []),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        _locate_problem(req, names, types)
        raise provider_error(req.name, f"unreadable CSV: {exc}") from None


def _locate_problem(req: ParseRequest, names: list[str], types: dict[str, pa.DataType]) -> None:
    """Slow pass after Arrow refused the file: raise an error naming the line and column."""
    text = req.data.decode("utf-8-sig", errors="replace")
    for line_no, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        if line_no == 1 or not row or not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            raise provider_error(req.name, f"line {line_no}: {len(row)} fields, expected {len(names)} ({','.join(names)})")
        for name, cell in zip(names, row):
            if types[name] == pa.float64():
                parse_float(cell, req.name, f"line {line_no} column {name}", provider=True)
            elif types[name] == pa.date32():
                _iso_date(cell, req, f"line {line_no} column {name}")


def _iso_date(cell: str, req: ParseRequest, where: str) -> None:
    try:
        dt.date.fromisoformat(cell.strip())
    except ValueError:
        raise provider_error(req.name, f"{where}: not a date YYYY-MM-DD: {cell[:40]!r}") from None


def _check_single_daily_ticker(table: pa.Table, name: str) -> None:
    if table.num_rows == 0:
        return
    tickers = pc.unique(table["<TICKER>"])
    if len(tickers) != 1:
        raise provider_error(name, f"one ticker per file expected, found {len(tickers)}: {tickers[:5].to_pylist()}")
    periods = pc.unique(table["<PER>"]).to_pylist()
    if periods != ["D"]:
        raise provider_error(name, f"not daily data: <PER> is {periods[:5]} (expected D)")


def _yyyymmdd(column: pa.ChunkedArray, req: ParseRequest) -> pa.Array:
    """<DATE> -> date32. Arrow's ``strptime`` is not used: it rolls impossible days over (20230229 ->
    2023-03-01), so a bad value could become a wrong date instead of an error."""
    dates = _yyyymmdd_numeric(column)
    if dates is not None:
        return dates
    for i, value in enumerate(column.to_pylist()):  # name the first bad value
        try:
            ok = len(value) == 8 and value.isdigit() and dt.datetime.strptime(value, "%Y%m%d").year >= 1000
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise provider_error(req.name, f"line {i + 2} column <DATE>: not a date YYYYMMDD: {str(value)[:20]!r}")
    raise provider_error(req.name, "column <DATE>: invalid date")


def _yyyymmdd_numeric(column: pa.ChunkedArray) -> pa.Array | None:
    """YYYYMMDD strings -> date32 with integer arithmetic (~2x cheaper than regex + strptime for a
    5,000-row member), or None when any value is not a valid date: 8 digits, year >= 1000, a real
    calendar day (the caller then names the line)."""
    if not len(column):
        return date_array(np.empty(0, dtype=np.int64))
    if pc.min_max(pc.utf8_length(column)).as_py() != {"min": 8, "max": 8}:
        return None
    try:
        numbers = arrow_to_int64(column.cast(pa.int64()))  # "+1234567" and " 1234567" also cast ...
    except (pa.ArrowInvalid, DataFormatError):
        return None
    if numbers.min() < 10000101:  # ... but land below the smallest 8-digit date
        return None
    years, months, days = numbers // 10000, numbers // 100 % 100, numbers % 100
    if months.min() < 1 or months.max() > 12 or days.min() < 1:
        return None
    leap = (years % 4 == 0) & ((years % 100 != 0) | (years % 400 == 0))
    if np.any(days > _MONTH_DAYS[months] + (leap & (months == 2))):  # 31 April, 29 February 2023, ...
        return None
    return date_array(_days_from_civil(years, months, days))


_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _days_from_civil(years: np.ndarray, months: np.ndarray, days: np.ndarray) -> np.ndarray:
    """Days since 1970-01-01 of proleptic Gregorian dates (H. Hinnant's days_from_civil, vectorised)."""
    years = years - (months <= 2)
    era = years // 400
    year_of_era = years - era * 400
    day_of_year = (153 * np.where(months > 2, months - 3, months + 9) + 2) // 5 + days - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


def _normalized(req: ParseRequest, dates: pa.ChunkedArray | pa.Array, prices: dict[str, pa.ChunkedArray],
                volume: pa.ChunkedArray | None) -> Normalized:
    columns: dict[str, pa.Array | None] = {k: v.combine_chunks() for k, v in prices.items()}
    try:
        vol = None if volume is None else pc.round(volume.combine_chunks()).cast(pa.int64())
    except pa.ArrowInvalid as exc:  # inf or > 2**63
        raise provider_error(req.name, f"volume out of range: {exc}") from None
    if isinstance(dates, pa.ChunkedArray):
        dates = dates.combine_chunks()
    bars = bars_from_arrow(dates, columns, vol, req.fetched_at, req.keep_duplicates)
    return Normalized(bars, empty_actions())


# Small bulk members (Stooq's daily update file: one row per symbol) are parsed in Python: Arrow's CSV
# reader and compute kernels cost ~1.7 ms of fixed overhead per file, ~20x the work, and a new day is
# 10,000 such files twice over (import, then processing). The fast path takes only plainly well-formed
# input and returns None for anything else, so the Arrow path - and its error messages - decide every
# unusual case; for what it accepts, both paths build the same table (tests compare them).
_SMALL_BODY = 4096
_PLAIN_NUMBER = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_EIGHT_DIGITS = re.compile(r"[0-9]{8}")
_INT64_RANGE = (-(2**63), 2**63 - 1)


def _small_bulk(req: ParseRequest) -> Normalized | None:
    data = req.data
    if len(data) > _SMALL_BODY or not data.isascii() or b'"' in data or b"\r" in data.replace(b"\r\n", b""):
        return None
    lines = data.decode("ascii").replace("\r\n", "\n").split("\n")
    rows = [line.split(",") for line in lines[1:] if line]  # Arrow: skip_rows=1, ignore_empty_lines
    if not lines[0].strip() or any(len(r) != len(BULK_HEADER) for r in rows):
        return None
    if len({r[0] for r in rows}) > 1 or any(r[1] != "D" for r in rows):
        return None
    parsed = [_small_row(r) for r in rows]
    if any(p is None for p in parsed):
        return None
    return Normalized(_small_table(parsed, req), empty_actions())  # type: ignore[arg-type]


def _small_row(row: list[str]) -> tuple[dt.date, list[float], int] | None:
    date, cells = row[2], row[4:9]  # <DATE>, <OPEN>..<CLOSE>, <VOL>
    if not _EIGHT_DIGITS.fullmatch(date) or not all(_PLAIN_NUMBER.fullmatch(c) for c in cells):
        return None
    try:
        day = dt.date(int(date[:4]), int(date[4:6]), int(date[6:]))
        values = [float(c) for c in cells]
        volume = round(values[4])  # half to even, as pc.round
    except (ValueError, OverflowError):
        return None
    if not all(math.isfinite(v) for v in values) or not _INT64_RANGE[0] <= volume <= _INT64_RANGE[1]:
        return None
    return day, values[:4], volume


def _small_table(rows: list[tuple[dt.date, list[float], int]], req: ParseRequest) -> pa.Table:
    cols = BarColumns()
    for day, (o, h, lo, c), volume in rows:
        cols.append(day, o, h, lo, c, None, volume)  # Stooq has no adjusted close
    return bars_table(cols, req.fetched_at, req.keep_duplicates)
