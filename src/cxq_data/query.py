"""Queries over the DuckDB views: the latest rows, a date range, or free SQL, as lists of dicts.

This module is on the cold path of ``cxq_data query``: it imports neither pandas nor yfinance (rows
come from ``cursor.description`` + ``fetchall``). Symbols, sources and dates are bound parameters,
never formatted into SQL text.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cxq_data.db import connect
from cxq_data.errors import ConfigError, CxqError
from cxq_data.paths import DataLayout
from cxq_data.sources import source_name
from cxq_data.sql_guard import check_reading_sql
from cxq_data.symbols import validate_symbol

if TYPE_CHECKING:
    import duckdb

DAILY_COLUMNS = ("symbol", "source", "date", "open", "high", "low", "close", "adjusted_close", "volume",
                 "ingested_at")
_SELECT = ", ".join(DAILY_COLUMNS)


def _rows(cursor: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row)) for row in cursor.fetchall()]


class QueryError(CxqError):
    """DuckDB refused or failed the statement (syntax, unknown column, write on a read-only database)."""


def _run(layout: DataLayout, text: str, params: list[Any] | None = None, *,
         user_sql: bool = False) -> list[dict[str, Any]]:
    import duckdb

    con = connect(layout, read_only=True)
    try:
        if user_sql:
            check_reading_sql(con, text)
        return _rows(con.execute(text, params or []))
    except duckdb.Error as exc:
        raise QueryError(f"query failed: {exc}") from exc
    finally:
        con.close()


def _filters(symbol: str, source: str | None) -> tuple[str, list[Any]]:
    where, params = "symbol = ?", [validate_symbol(symbol)]
    if source is not None:
        where += " AND source = ?"
        params.append(source_name(source))
    return where, params


def latest(layout: DataLayout, symbol: str, rows: int = 10, source: str | None = None) -> list[dict[str, Any]]:
    """The ``rows`` most recent bars of ``symbol`` per source, newest first (sources in name order)."""
    if rows < 1:
        raise ConfigError(f"rows must be >= 1, got {rows}")
    where, params = _filters(symbol, source)
    text = (f"SELECT {_SELECT} FROM daily WHERE {where} "
            "QUALIFY row_number() OVER (PARTITION BY source ORDER BY date DESC) <= ? "
            "ORDER BY source, date DESC")
    return _run(layout, text, [*params, rows])


def date_range(layout: DataLayout, symbol: str, start: dt.date | str, end: dt.date | str,
               source: str | None = None) -> list[dict[str, Any]]:
    """Bars of ``symbol`` with ``start <= date <= end`` (inclusive), by source then date."""
    start_d, end_d = _as_date(start, "start"), _as_date(end, "end")
    if start_d > end_d:
        raise ConfigError(f"start {start_d} is after end {end_d}")
    where, params = _filters(symbol, source)
    # The year bounds let DuckDB skip whole (source, year) files by their Hive key before opening them.
    text = (f"SELECT {_SELECT} FROM daily WHERE {where} AND year BETWEEN ? AND ? AND date BETWEEN ? AND ? "
            "ORDER BY source, date")
    return _run(layout, text, [*params, start_d.year, end_d.year, start_d, end_d])


def sql(layout: DataLayout, text: str) -> list[dict[str, Any]]:
    """Run one reading SQL statement (views: daily, actions, intraday, lake_summary ...); statements
    that would write anything, even a file (COPY ... TO, ATTACH), are refused (:mod:`cxq_data.sql_guard`)."""
    if not text.strip():
        raise ConfigError("empty SQL statement")
    return _run(layout, text, user_sql=True)


def _as_date(value: dt.date | str, what: str) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError as exc:
        raise ConfigError(f"{what} date {value!r} is not YYYY-MM-DD") from exc
