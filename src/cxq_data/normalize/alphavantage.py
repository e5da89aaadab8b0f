"""Alpha Vantage JSON (``av_daily_json``, ``av_daily_adjusted_json``, ``av_intraday_json``).

* ``TIME_SERIES_DAILY``: as-traded OHLCV; ``adjusted_close`` stays null.
* ``TIME_SERIES_DAILY_ADJUSTED``: as-traded OHLCV plus ``5. adjusted close``; ``7. dividend amount``
  > 0 and ``8. split coefficient`` != 1 become actions (AV's coefficient is new shares per old, the
  canonical ``split_ratio`` convention).
* ``TIME_SERIES_INTRADAY``: timestamps are exchange-local (``US/Eastern`` in the meta data) and are
  converted to UTC.

Values are strings, rows newest first. Error bodies (``Information``, ``Note``, ``Error Message``:
quota, premium endpoint, bad key, bad symbol) arrive with HTTP 200; if one reached the raw layer it
is an error here, never an empty series.
"""

from __future__ import annotations

import datetime as dt
import functools
import zoneinfo
from typing import Any

from cxq_data.normalize.base import Normalized, Parser, ParseRequest
from cxq_data.normalize.tables import (
    ActionRows,
    BarColumns,
    actions_table,
    bars_table,
    intraday_table,
    load_json,
    parse_float,
    parse_volume,
    provider_error,
)

_MESSAGE_KEYS = ("Error Message", "Information", "Note")
_ZONE_ALIASES = {"US/Eastern": "America/New_York"}
_REQUIRED = ("open", "high", "low", "close", "volume")


def parser_for(fmt: str) -> Parser:
    return functools.partial(parse_av, adjusted=fmt == "av_daily_adjusted_json",
                             intraday=fmt == "av_intraday_json")


def parse_av(req: ParseRequest, *, adjusted: bool, intraday: bool) -> Normalized:
    doc = load_json(req.data, req.name)
    series = _time_series(doc, req.name)
    zone = _zone(doc.get("Meta Data") or {}, req.name)
    bars, actions = BarColumns(), ActionRows()
    for key, fields in series.items():
        if not isinstance(fields, dict):
            raise provider_error(req.name, f"{key}: expected an object of fields")
        values = {_field_name(k): v for k, v in fields.items()}
        _add_row(bars, actions, key, values, zone, req.name, adjusted, intraday)
    build = intraday_table if intraday else bars_table
    return Normalized(build(bars, req.fetched_at, req.keep_duplicates), actions_table(actions, req.fetched_at))


def _time_series(doc: Any, name: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise provider_error(name, "not an Alpha Vantage body (top level is not an object)")
    keys = [k for k in doc if k.startswith("Time Series")]
    if not keys:
        for msg_key in _MESSAGE_KEYS:
            if msg_key in doc:
                raise provider_error(name, f"Alpha Vantage {msg_key!r} instead of data: {str(doc[msg_key])[:300]}")
        raise provider_error(name, "no 'Time Series' object in the Alpha Vantage body")
    series = doc[keys[0]]
    if not isinstance(series, dict):
        raise provider_error(name, f"{keys[0]!r} is not an object")
    return series


def _zone(meta: dict[str, Any], name: str) -> dt.tzinfo:
    zone_name = next((str(v) for k, v in meta.items() if k.endswith("Time Zone")), "US/Eastern")
    try:
        return zoneinfo.ZoneInfo(_ZONE_ALIASES.get(zone_name, zone_name))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise provider_error(name, f"unknown time zone {zone_name!r} in Meta Data") from None


def _field_name(key: str) -> str:
    """``"5. adjusted close"`` -> ``"adjusted close"``."""
    head, sep, tail = key.partition(". ")
    return tail.strip().lower() if sep and head.strip().isdigit() else key.strip().lower()


def _add_row(bars: BarColumns, actions: ActionRows, key: str, values: dict[str, Any], zone: dt.tzinfo,
             name: str, adjusted: bool, intraday: bool) -> None:
    required = _REQUIRED + (("adjusted close",) if adjusted else ())
    missing = [f for f in required if f not in values]
    if missing:
        raise provider_error(name, f"{key}: missing field(s) {', '.join(missing)}")

    def num(field: str) -> float | None:
        return parse_float(str(values[field]), name, f"{key} {field}", provider=True)

    prices = [num(f) for f in ("open", "high", "low", "close")]
    volume = parse_volume(str(values["volume"]), name, f"{key} volume", provider=True)
    adj = num("adjusted close") if adjusted else None
    if intraday:
        bars.append(_timestamp(key, zone, name), *prices, adj, volume)
        return
    day = _date(key, name)
    bars.append(day, *prices, adj, volume)
    if adjusted:
        dividend = num("dividend amount") if "dividend amount" in values else None
        split = num("split coefficient") if "split coefficient" in values else None
        actions.add(day, dividend=dividend if dividend and dividend > 0 else None, split_ratio=split)


def _date(key: str, name: str) -> dt.date:
    try:
        return dt.date.fromisoformat(key.strip()[:10])
    except ValueError:
        raise provider_error(name, f"not a date: {key[:40]!r}") from None


def _timestamp(key: str, zone: dt.tzinfo, name: str) -> dt.datetime:
    try:
        local = dt.datetime.strptime(key.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        raise provider_error(name, f"not a timestamp 'YYYY-MM-DD HH:MM:SS': {key[:40]!r}") from None
    return local.replace(tzinfo=zone).astimezone(dt.UTC)
