"""Yahoo chart v8 bodies for the sample (``/v8/finance/chart/{SYM}``), daily and intraday.

Daily: timestamps are the session open instant; ``close`` split-adjusted, ``adjclose`` split+dividend
adjusted, ``events.dividends`` amounts split-adjusted, ``events.splits`` numerator/denominator; only
events inside the requested range are listed (like Yahoo). Intraday: last 60 days of the sample only
(``1m``: 30 days, at most 8 days per request), else HTTP 422 with Yahoo's body.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass
from typing import Any

from cxq_data.simulator import sample
from cxq_data.simulator.faults import yahoo_error_body

DAILY = "1d"
INTRADAY_MINUTES = {"1m": 1, "2m": 2, "5m": 5, "15m": 15, "30m": 30, "60m": 60, "90m": 90, "1h": 60}
RANGE_SESSIONS = {
    "1d": 1,
    "5d": 5,
    "1mo": 21,
    "3mo": 63,
    "6mo": 126,
    "1y": 252,
    "2y": 504,
    "5y": 1260,
    "10y": 2520,
    "max": 100_000,
}
VALID_RANGES = ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"]


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    body: bytes


def json_reply(doc: Any, status: int = 200) -> Reply:
    return Reply(status, "application/json;charset=utf-8", json.dumps(doc, separators=(",", ":")).encode())


def error_reply(status: int, description: str | None = None) -> Reply:
    return Reply(status, "application/json;charset=utf-8", yahoo_error_body(status, description).encode())


def sample_end_epoch() -> int:
    """'Now' for the simulator: the close of the sample's last session."""
    end = dt.datetime.combine(sample.SAMPLE_END, dt.time(16), tzinfo=zoneinfo.ZoneInfo("America/New_York"))
    return int(end.timestamp())


def chart(symbol: str, params: dict[str, str], tz_override: str | None = None, empty: bool = False) -> Reply:
    """Answer a chart request for canonical ``symbol`` (already resolved by the server)."""
    interval = params.get("interval", DAILY)
    if interval != DAILY and interval not in INTRADAY_MINUTES:
        return error_reply(
            400,
            f"Invalid input - interval={interval} is not supported. Valid intervals: "
            "[1m, 2m, 5m, 15m, 30m, 60m, 90m, 1h, 4h, 1d, 5d, 1wk, 1mo, 3mo]",
        )
    window = _window(symbol, params)
    if isinstance(window, Reply):
        return window
    p1, p2 = window
    if interval != DAILY:
        problem = _intraday_window_problem(interval, p1, p2)
        if problem:
            return error_reply(422, problem)
    events_wanted = params.get("events", "").lower()
    if interval == DAILY:
        result = _daily_result(symbol, p1, p2, events_wanted, empty)
    else:
        result = _intraday_result(symbol, interval, p1, p2, empty)
    meta = _meta(symbol, interval, params.get("range", ""), result, tz_override)
    result = {"meta": meta, **result}
    return json_reply({"chart": {"result": [result], "error": None}})


def _window(symbol: str, params: dict[str, str]) -> tuple[int, int] | Reply:
    now = sample_end_epoch()
    if "period1" in params:
        try:
            p1 = int(params["period1"])
            p2 = int(params.get("period2", now))
        except ValueError:
            return error_reply(400, "Invalid input - period1/period2 must be integers")
        return p1, p2
    rng = params.get("range", "1mo")
    days = sample.sessions(sample.spec_of(symbol).exchange)
    if rng == "ytd":
        first = next(d for d in days if d.year == sample.SAMPLE_END.year)
    elif rng in RANGE_SESSIONS:
        first = days[max(0, len(days) - RANGE_SESSIONS[rng])]
    else:
        return error_reply(400, f"Invalid input - range={rng} is not supported. Valid ranges: {VALID_RANGES}")
    zone = zoneinfo.ZoneInfo(sample.spec_of(symbol).timezone)
    return int(dt.datetime.combine(first, dt.time(0), tzinfo=zone).timestamp()), now + 1


def _intraday_window_problem(interval: str, p1: int, p2: int) -> str | None:
    now = sample_end_epoch()
    if interval == "1m":
        if p2 - p1 > 8 * 86400:
            return "Only 8 days worth of 1m granularity data are allowed to be fetched per request."
        if p1 < now - 30 * 86400:
            return (
                f"1m data not available for startTime={p1} and endTime={p2}. "
                "The requested range must be within the last 30 days."
            )
    elif p1 < now - 60 * 86400:
        return (
            f"{interval} data not available for startTime={p1} and endTime={p2}. "
            "The requested range must be within the last 60 days."
        )
    return None


def _daily_result(symbol: str, p1: int, p2: int, events: str, empty: bool) -> dict[str, Any]:
    missing = sample.defect(symbol, "yfinance", "missing_session")
    bars = (
        []
        if empty
        else [
            b
            for b in sample.true_bars(symbol)
            if p1 <= sample.session_open_utc(symbol, b.date).timestamp() < p2 and b.date != missing
        ]
    )
    result: dict[str, Any] = {}
    if not bars:
        result["indicators"] = {"quote": [{}], "adjclose": [{}]}
        return result
    stamps = [int(sample.session_open_utc(symbol, b.date).timestamp()) for b in bars]
    result["timestamp"] = stamps
    result["events"] = _events(bars, stamps, events)
    if not result["events"]:
        del result["events"]
    quote = {
        "open": [round(b.split_adjusted(b.open), 6) for b in bars],
        "high": [round(b.split_adjusted(b.high), 6) for b in bars],
        "low": [round(b.split_adjusted(b.low), 6) for b in bars],
        "close": [round(b.split_adjusted(b.close), 6) for b in bars],
        "volume": [round(b.volume * b.split_factor) for b in bars],
    }
    result["indicators"] = {"quote": [quote], "adjclose": [{"adjclose": [b.adjusted_close for b in bars]}]}
    return result


def _events(bars: list[sample.SampleBar], stamps: list[int], wanted: str) -> dict[str, Any]:
    events: dict[str, Any] = {}
    if "div" in wanted:
        divs = {
            str(ts): {"amount": round(b.split_adjusted(b.dividend), 6), "date": ts}
            for b, ts in zip(bars, stamps)
            if b.dividend
        }
        if divs:
            events["dividends"] = divs
    if "split" in wanted:
        splits = {
            str(ts): {
                "date": ts,
                "numerator": float(b.split_ratio),
                "denominator": 1.0,
                "splitRatio": f"{b.split_ratio:g}:1",
            }
            for b, ts in zip(bars, stamps)
            if b.split_ratio != 1.0
        }
        if splits:
            events["splits"] = splits
    return events


def _intraday_result(symbol: str, interval: str, p1: int, p2: int, empty: bool) -> dict[str, Any]:
    minutes = INTRADAY_MINUTES[interval]
    spec = sample.spec_of(symbol)
    zone = zoneinfo.ZoneInfo(spec.timezone)
    first = dt.datetime.fromtimestamp(p1, zone).date()
    last = dt.datetime.fromtimestamp(p2, zone).date()
    days = [d for d in sample.sessions(spec.exchange) if first <= d <= last]
    bars = (
        []
        if empty
        else [
            b
            for d in days
            for b in sample.intraday_bars(symbol, d, minutes)
            if p1 <= b.start.timestamp() < p2
        ]
    )
    if not bars:
        return {"indicators": {"quote": [{}]}}
    quote = {
        "open": [b.open for b in bars],
        "high": [b.high for b in bars],
        "low": [b.low for b in bars],
        "close": [b.close for b in bars],
        "volume": [b.volume for b in bars],
    }
    periods = [[_period(d, spec.open_time, spec.close_time, zone)] for d in days]
    return {
        "timestamp": [int(b.start.timestamp()) for b in bars],
        "indicators": {"quote": [quote]},
        "_tradingPeriods": periods,
    }


def _period(day: dt.date, start: dt.time, end: dt.time, zone: dt.tzinfo) -> dict[str, Any]:
    s = dt.datetime.combine(day, start, tzinfo=zone)
    e = dt.datetime.combine(day, end, tzinfo=zone)
    return {
        "timezone": s.tzname(),
        "start": int(s.timestamp()),
        "end": int(e.timestamp()),
        "gmtoffset": int(s.utcoffset().total_seconds()),
    }  # type: ignore[union-attr]


def _meta(
    symbol: str, interval: str, range_: str, result: dict[str, Any], tz_override: str | None
) -> dict[str, Any]:
    from cxq_data.sources import Source
    from cxq_data.symbols import provider_symbol

    spec = sample.spec_of(symbol)
    zone_name = tz_override or spec.timezone
    zone = zoneinfo.ZoneInfo(zone_name)
    bars = sample.true_bars(symbol)
    last, first = bars[-1], bars[0]
    end = dt.datetime.fromtimestamp(sample_end_epoch(), zone)
    quote = result["indicators"]["quote"][0]
    meta: dict[str, Any] = {
        "currency": spec.currency,
        "symbol": provider_symbol(symbol, Source.YFINANCE),
        "exchangeName": spec.exchange_name,
        "fullExchangeName": spec.exchange_name,
        "instrumentType": "EQUITY",
        "firstTradeDate": int(sample.session_open_utc(symbol, first.date).timestamp()),
        "regularMarketTime": sample_end_epoch(),
        "hasPrePostMarketData": True,
        "gmtoffset": int(end.utcoffset().total_seconds()),  # type: ignore[union-attr]
        "timezone": end.tzname(),
        "exchangeTimezoneName": zone_name,
        "regularMarketPrice": last.close,
        "chartPreviousClose": (quote.get("close") or [last.close])[0],
        "priceHint": 2,
        "dataGranularity": interval,
        "range": range_,
        "validRanges": VALID_RANGES,
    }
    periods = result.pop("_tradingPeriods", None)
    if periods is not None:
        meta["tradingPeriods"] = periods
    return meta
