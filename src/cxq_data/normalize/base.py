"""Shared types of the normalizers (see the package docstring for the contract)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

import pyarrow as pa

from cxq_data.raw import RawRecord


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


def normalize_record(record: RawRecord) -> Normalized:  # pragma: no cover - replaced by implementation
    raise NotImplementedError


def merge_latest(parts: list[Normalized]) -> Normalized:  # pragma: no cover - replaced by implementation
    raise NotImplementedError
