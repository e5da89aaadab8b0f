"""Shared types of the normalizers, the per-format dispatch and the merge of several fetches.

See the package docstring for the contract. Each format family lives in its own module
(``yahoo``, ``alphavantage``, ``stooq``, ``csvfile``); every parser takes the body bytes, a name
for error messages (the raw file path, or the user's file on import) and the ``fetched_at`` that
becomes ``ingested_at``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pyarrow as pa

from cxq_data.arrow_util import arrow_to_int64, conform, empty_table, numpy_to_arrow, strictly_increasing
from cxq_data.errors import RawLayerError
from cxq_data.raw import RawRecord, RawResponse
from cxq_data.schema import ACTIONS_SCHEMA, PARTITION_SCHEMA


class RawFormat(str, Enum):
    YAHOO_CHART_JSON = "yahoo_chart_json"  # Yahoo chart v8 body (daily or intraday)
    AV_DAILY_JSON = "av_daily_json"  # TIME_SERIES_DAILY
    AV_DAILY_ADJUSTED_JSON = "av_daily_adjusted_json"  # TIME_SERIES_DAILY_ADJUSTED
    AV_INTRADAY_JSON = "av_intraday_json"  # TIME_SERIES_INTRADAY
    STOOQ_CSV = "stooq_csv"  # Date,Open,High,Low,Close,Volume
    STOOQ_BULK_TXT = "stooq_bulk_txt"  # <TICKER>,<PER>,<DATE>,... member of d_us_txt.zip
    GENERIC_CSV = "generic_csv"  # user CSV: Date, Open, High, Low, Close, [Adj Close], Volume, ...


@dataclass(frozen=True)
class Normalized:
    """Normalized content of one or more raw files of one symbol/source."""

    bars: pa.Table  # schema.PARTITION_SCHEMA (daily) or schema.INTRADAY_SCHEMA (intraday)
    actions: pa.Table  # schema.ACTIONS_SCHEMA


@dataclass(frozen=True)
class ParseRequest:
    """What a format parser needs: the body, a name for errors, the fetch time and the kind."""

    data: bytes
    name: str
    fetched_at: dt.datetime
    intraday: bool = False
    keep_duplicates: bool = False


Parser = Callable[[ParseRequest], Normalized]


def _parser_for(fmt: RawFormat) -> Parser:
    # Imported here so that each format module stays independent of the others.
    if fmt is RawFormat.YAHOO_CHART_JSON:
        from cxq_data.normalize.yahoo import parse_chart

        return parse_chart
    if fmt in (RawFormat.AV_DAILY_JSON, RawFormat.AV_DAILY_ADJUSTED_JSON, RawFormat.AV_INTRADAY_JSON):
        from cxq_data.normalize.alphavantage import parser_for

        return parser_for(fmt.value)
    if fmt is RawFormat.STOOQ_CSV:
        from cxq_data.normalize.stooq import parse_stooq_csv

        return parse_stooq_csv
    if fmt is RawFormat.STOOQ_BULK_TXT:
        from cxq_data.normalize.stooq import parse_stooq_bulk

        return parse_stooq_bulk
    from cxq_data.normalize.csvfile import parse_generic_csv

    return parse_generic_csv


def record_format(record: RawRecord) -> RawFormat:
    """The manifest's ``format``; for manifests without one, inferred from source and extension."""
    value = record.manifest.get("format")
    if value is None:
        return _infer_format(record)
    try:
        return RawFormat(value)
    except ValueError:
        known = ", ".join(f.value for f in RawFormat)
        raise RawLayerError(f"{record.path}: unknown raw format {value!r} in manifest; known: {known}") from None


def _infer_format(record: RawRecord) -> RawFormat:
    source = str(record.manifest.get("source", ""))
    ext = record.path.suffix.lower()
    if source == "yfinance" and ext == ".json":
        return RawFormat.YAHOO_CHART_JSON
    if source == "alphavantage" and ext == ".json":
        if record.kind.startswith("intraday"):
            return RawFormat.AV_INTRADAY_JSON
        return RawFormat.AV_DAILY_JSON
    if source == "stooq" and ext in (".csv", ".txt"):
        return RawFormat.STOOQ_BULK_TXT if ext == ".txt" else RawFormat.STOOQ_CSV
    if ext in (".csv", ".txt"):
        return RawFormat.GENERIC_CSV
    raise RawLayerError(f"{record.path}: manifest has no 'format' and none can be inferred")


def parse_body(fmt: RawFormat | str, request: ParseRequest) -> Normalized:
    """Normalize bytes in a known format (the importer validates files with this before storing)."""
    return _parser_for(RawFormat(fmt))(request)


def check_response(resp: RawResponse) -> None:
    """Parse a fetched body the way processing will, before it is stored.

    A body that processing cannot read (a price ``abc``, arrays of different lengths, a date
    2024-13-45) is a provider error, not data: stored, it would sit in the immutable raw layer and
    fail its symbol on every later run, even after a good fetch. Raises the parser's error, named
    after source, symbol and kind (never the URL: it may hold a key).
    """
    fmt = resp.extra.get("format")
    if fmt is None:
        return
    name = f"{resp.source} {resp.symbol} {resp.kind} response"
    parse_body(fmt, ParseRequest(resp.body, name, resp.fetched_at, intraday=resp.kind.startswith("intraday")))


def normalize_record(record: RawRecord, *, keep_duplicates: bool = False) -> Normalized:
    """Normalize one raw file: bars sorted by date (or ts), one row per date, plus its actions.

    ``keep_duplicates=True`` keeps every row of a date in file order (still sorted by date), so a
    data-quality check can see a file that holds two rows for one date.
    """
    fmt = record_format(record)
    request = ParseRequest(
        data=record.read_bytes(),
        name=str(record.path),
        fetched_at=record.fetched_at,
        intraday=record.kind.startswith("intraday"),
        keep_duplicates=keep_duplicates,
    )
    return _parser_for(fmt)(request)


def merge_latest(parts: list[Normalized]) -> Normalized:
    """Combine several normalized fetches of one symbol/source: per date the latest fetch wins.

    "Latest" is the larger ``ingested_at``; on a tie the part later in ``parts`` wins, so pass the
    parts in :func:`cxq_data.raw.list_raw` order (fetched_at, then file name). The same parts give
    an identical table. An empty list gives empty daily tables.
    """
    if not parts:
        return Normalized(empty_table(PARTITION_SCHEMA), empty_table(ACTIONS_SCHEMA))
    key = "ts" if parts[0].bars.schema.names[0] == "ts" else "date"
    bars = _latest_per_key([p.bars for p in parts], key)
    actions = _latest_per_key([p.actions for p in parts], "date")
    return Normalized(bars, actions)


def _latest_per_key(tables: list[pa.Table], key: str) -> pa.Table:
    schema = tables[0].schema
    if any(t.schema.names != schema.names for t in tables):
        raise ValueError("merge_latest: all parts must share one schema (all daily or all intraday)")
    tables = [conform(t, schema) for t in tables]
    nonempty = [t for t in tables if t.num_rows]
    if len(nonempty) <= 1:
        # one part alone: the general path would keep its last row per key, sorted by key
        tables = nonempty or tables[:1]
    combined = pa.concat_tables(tables)
    if combined.num_rows == 0:
        return combined.combine_chunks()
    part_no = np.repeat(np.arange(len(tables)), [t.num_rows for t in tables])
    keys = arrow_to_int64(combined[key])
    if strictly_increasing(keys):  # e.g. a new day appended to a year: every row wins, nothing moves
        return combined.combine_chunks()
    fetched = arrow_to_int64(combined["ingested_at"])
    order = np.lexsort((np.arange(len(part_no)), part_no, fetched, keys))  # last key sorts first
    sorted_keys = keys[order]
    is_last = np.append(sorted_keys[1:] != sorted_keys[:-1], True)
    return combined.take(numpy_to_arrow(order[is_last])).combine_chunks()
