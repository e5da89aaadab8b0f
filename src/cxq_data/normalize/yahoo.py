"""Yahoo chart v8 JSON (``yahoo_chart_json``) -> canonical bars and actions.

The body holds parallel arrays indexed by ``timestamp`` (epoch seconds, UTC). Daily timestamps are
the session open instant, so the trading date is the timestamp converted to
``meta.exchangeTimezoneName`` - never the UTC date (which is the previous day for Sydney or Tokyo).

Yahoo's ``close`` (and open/high/low/volume) is split-adjusted as of the fetch; the canonical
``close`` is as traded. A bar on date ``d`` is therefore multiplied by the product of the split
ratios (numerator/denominator) of every split in ``events.splits`` dated after ``d`` (volume is
divided). Dividend amounts are split-adjusted too and get the same factor at their ex-date.
``adjusted_close`` is Yahoo's ``adjclose`` unchanged.

Limitation: only splits inside the fetched range are in ``events``. A split after the fetched
range, which Yahoo had already applied when the body was fetched, cannot be undone from this body
alone; a later fetch that covers the split date fixes it (``merge_latest`` prefers the newer fetch).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import Any

from cxq_data.normalize.base import Normalized, ParseRequest
from cxq_data.normalize.tables import (
    ActionRows,
    BarColumns,
    actions_table,
    bars_table,
    intraday_table,
    json_number,
    load_json,
    provider_error,
    volume_int,
)

_OHLCV = ("open", "high", "low", "close", "volume")


def parse_chart(req: ParseRequest) -> Normalized:
    result = _chart_result(load_json(req.data, req.name), req.name)
    zone = _exchange_zone(result.get("meta") or {}, req.name)
    timestamps = result.get("timestamp") or []
    if not isinstance(timestamps, list):
        raise provider_error(req.name, "chart.result[0].timestamp is not a list")
    columns = _quote_columns(result, len(timestamps), req.name)
    events = result.get("events") or {}
    splits = _splits(events.get("splits") or {}, zone, req.name)
    actions = _dividends(events.get("dividends") or {}, zone, splits, req.name)
    for day, ratio in splits:
        actions.add(day, split_ratio=ratio)
    bars = _bars(timestamps, columns, zone, splits, req)
    table = (intraday_table if req.intraday else bars_table)(bars, req.fetched_at, req.keep_duplicates)
    return Normalized(table, actions_table(actions, req.fetched_at))


def _chart_result(doc: Any, name: str) -> dict[str, Any]:
    if not isinstance(doc, dict) or "chart" not in doc:
        error = doc.get("finance", {}).get("error") if isinstance(doc, dict) else None
        if error:
            raise provider_error(name, f"Yahoo error {error.get('code')}: {error.get('description')}")
        raise provider_error(name, "not a Yahoo chart body (no top-level 'chart' object)")
    chart = doc["chart"] or {}
    if chart.get("error"):
        error = chart["error"]
        raise provider_error(name, f"Yahoo error {error.get('code')}: {error.get('description')}")
    results = chart.get("result")
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise provider_error(name, "Yahoo chart body without a result")
    return results[0]


def _exchange_zone(meta: dict[str, Any], name: str) -> dt.tzinfo:
    zone_name = meta.get("exchangeTimezoneName")
    if zone_name:
        try:
            return zoneinfo.ZoneInfo(str(zone_name))
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise provider_error(name, f"unknown exchange time zone {zone_name!r} in meta") from None
    if isinstance(meta.get("gmtoffset"), int):  # old bodies: a fixed offset is better than UTC
        return dt.timezone(dt.timedelta(seconds=meta["gmtoffset"]))
    raise provider_error(name, "meta.exchangeTimezoneName missing: cannot tell the trading date")


def _quote_columns(result: dict[str, Any], n: int, name: str) -> dict[str, list[Any]]:
    indicators = result.get("indicators") or {}
    quotes = indicators.get("quote") or [{}]
    quote = quotes[0] if isinstance(quotes, list) and quotes else {}
    columns: dict[str, list[Any]] = {}
    for field in _OHLCV:
        values = quote.get(field)
        if values is None and n == 0:
            values = []
        if not isinstance(values, list):
            raise provider_error(name, f"missing column indicators.quote[0].{field}")
        columns[field] = values
    adj = (indicators.get("adjclose") or [{}])[0].get("adjclose")
    columns["adjclose"] = adj if isinstance(adj, list) else [None] * n
    for field, values in columns.items():
        if len(values) != n:
            raise provider_error(name, f"indicators {field} has {len(values)} values for {n} timestamps")
    return columns


def _local_date(epoch: Any, zone: dt.tzinfo, name: str, where: str) -> dt.date:
    return _local_time(epoch, zone, name, where).date()


def _local_time(epoch: Any, zone: dt.tzinfo, name: str, where: str) -> dt.datetime:
    if isinstance(epoch, bool) or not isinstance(epoch, (int, float, str)):
        raise provider_error(name, f"{where}: not an epoch timestamp: {str(epoch)[:40]!r}")
    try:
        return dt.datetime.fromtimestamp(int(epoch), tz=dt.UTC).astimezone(zone)
    except (ValueError, OverflowError, OSError):
        raise provider_error(name, f"{where}: not an epoch timestamp: {str(epoch)[:40]!r}") from None


def _splits(raw: dict[str, Any], zone: dt.tzinfo, name: str) -> list[tuple[dt.date, float]]:
    """(ex-date, new shares per old share), sorted by date."""
    out = []
    for key, event in raw.items():
        where = f"events.splits[{key}]"
        num = json_number(event.get("numerator"), name, where + ".numerator")
        den = json_number(event.get("denominator"), name, where + ".denominator")
        if not num or not den or num <= 0 or den <= 0:
            raise provider_error(name, f"{where}: split without a positive numerator/denominator")
        out.append((_local_date(event.get("date", key), zone, name, where), num / den))
    return sorted(out)


def _later_split_factor(day: dt.date, splits: list[tuple[dt.date, float]]) -> float:
    factor = 1.0
    for split_day, ratio in splits:
        if split_day > day:
            factor *= ratio
    return factor


def _dividends(raw: dict[str, Any], zone: dt.tzinfo, splits: list[tuple[dt.date, float]],
               name: str) -> ActionRows:
    actions = ActionRows()
    for key, event in raw.items():
        where = f"events.dividends[{key}]"
        amount = json_number(event.get("amount"), name, where + ".amount")
        if amount is None:
            raise provider_error(name, f"{where}: dividend without an amount")
        day = _local_date(event.get("date", key), zone, name, where)
        actions.add(day, dividend=amount * _later_split_factor(day, splits))
    return actions


def _bars(timestamps: list[Any], columns: dict[str, list[Any]], zone: dt.tzinfo,
          splits: list[tuple[dt.date, float]], req: ParseRequest) -> BarColumns:
    bars = BarColumns()
    for i, epoch in enumerate(timestamps):
        where = f"row {i} (timestamp {epoch})"
        prices = [json_number(columns[f][i], req.name, f"{where} {f}") for f in ("open", "high", "low", "close")]
        if all(p is None for p in prices):
            continue  # holiday / halted / not-yet-final row
        local = _local_time(epoch, zone, req.name, where)
        factor = _later_split_factor(local.date(), splits)
        o, h, lo, c = (None if p is None else p * factor for p in prices)
        volume = json_number(columns["volume"][i], req.name, f"{where} volume")
        vol = None if volume is None else volume_int(volume / factor, req.name, f"{where} volume", provider=True)
        adj = json_number(columns["adjclose"][i], req.name, f"{where} adjclose")
        bars.append(local.astimezone(dt.UTC) if req.intraday else local.date(), o, h, lo, c, adj, vol)
    return bars

