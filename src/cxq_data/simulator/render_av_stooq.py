"""Alpha Vantage ``/query`` and Stooq ``/q/d/l/`` bodies for the sample.

Alpha Vantage: every error is HTTP 200 JSON. A key starting with ``premium`` is a premium key; any
other non-empty key is a free key (``TIME_SERIES_DAILY_ADJUSTED`` and ``outputsize=full`` answer
with the premium messages). Values are strings, rows newest first, dates exchange-local.

Stooq: a request without ``apikey`` gets the HTML api-key page; unknown symbols or empty ranges get
``No data``; data is split-adjusted ``Date,Open,High,Low,Close,Volume`` ascending.
"""

from __future__ import annotations

import datetime as dt

from cxq_data.simulator import sample
from cxq_data.simulator.faults import AV_BODIES, STOOQ_BODIES
from cxq_data.simulator.render_yahoo import Reply, json_reply

AV_INTERVALS = {"1min": 1, "5min": 5, "15min": 15, "30min": 30, "60min": 60}
AV_COMPACT = 100
AV_FULL_INTRADAY_SESSIONS = 21


def av_message(name: str) -> Reply:
    return Reply(200, "application/json", AV_BODIES[name].encode())


def is_premium_key(key: str) -> bool:
    return key.startswith("premium")


def alphavantage(symbol: str | None, params: dict[str, str], empty: bool = False) -> Reply:
    """Answer ``/query``; ``symbol`` is the canonical sample symbol or None when unknown."""
    key = params.get("apikey", "")
    if not key:
        return av_message("bad_key")
    function = params.get("function", "")
    premium = is_premium_key(key)
    if function == "TIME_SERIES_DAILY_ADJUSTED" and not premium:
        return av_message("premium_endpoint")
    if function == "TIME_SERIES_DAILY" and params.get("outputsize") == "full" and not premium:
        return av_message("premium_param")
    if symbol is None or function not in (
        "TIME_SERIES_DAILY",
        "TIME_SERIES_DAILY_ADJUSTED",
        "TIME_SERIES_INTRADAY",
    ):
        return av_message("invalid_call")
    if function == "TIME_SERIES_INTRADAY":
        return _av_intraday(symbol, params, empty)
    return _av_daily(symbol, params, function == "TIME_SERIES_DAILY_ADJUSTED", empty)


def _num(value: float) -> str:
    return f"{value:.4f}"


def _av_daily(symbol: str, params: dict[str, str], adjusted: bool, empty: bool) -> Reply:
    bars = sample.true_bars(symbol)
    full = params.get("outputsize") == "full"
    rows = [] if empty else list(reversed(bars if full else bars[-AV_COMPACT:]))
    series: dict[str, dict[str, str]] = {}
    for b in rows:
        fields = {
            "1. open": _num(b.open),
            "2. high": _num(b.high),
            "3. low": _num(b.low),
            "4. close": _num(b.close),
        }
        if adjusted:
            fields |= {
                "5. adjusted close": _num(b.adjusted_close),
                "6. volume": str(b.volume),
                "7. dividend amount": _num(b.dividend),
                "8. split coefficient": f"{b.split_ratio:.1f}",
            }
        else:
            fields["5. volume"] = str(b.volume)
        series[b.date.isoformat()] = fields
    info = (
        "Daily Time Series with Splits and Dividend Events"
        if adjusted
        else "Daily Prices (open, high, low, close) and Volumes"
    )
    meta = {
        "1. Information": info,
        "2. Symbol": symbol,
        "3. Last Refreshed": bars[-1].date.isoformat(),
        "4. Output Size": "Full size" if full else "Compact",
        "5. Time Zone": "US/Eastern",
    }
    return json_reply({"Meta Data": meta, "Time Series (Daily)": series})


def _av_intraday(symbol: str, params: dict[str, str], empty: bool) -> Reply:
    interval = params.get("interval", "")
    if interval not in AV_INTERVALS:
        return av_message("invalid_call")
    minutes = AV_INTERVALS[interval]
    full = params.get("outputsize") == "full"
    days = sample.sessions(sample.spec_of(symbol).exchange)
    bars: list[sample.IntradayBar] = []
    for day in reversed(days[-AV_FULL_INTRADAY_SESSIONS:]):
        bars.extend(reversed(sample.intraday_bars(symbol, day, minutes)))
        if not full and len(bars) >= AV_COMPACT:
            break
    bars = [] if empty else bars[: None if full else AV_COMPACT]
    series = {
        b.start.strftime("%Y-%m-%d %H:%M:%S"): {
            "1. open": _num(b.open),
            "2. high": _num(b.high),
            "3. low": _num(b.low),
            "4. close": _num(b.close),
            "5. volume": str(b.volume),
        }
        for b in bars
    }
    last = max(series) if series else f"{days[-1]} 16:00:00"
    meta = {
        "1. Information": f"Intraday ({interval}) open, high, low, close prices and volume",
        "2. Symbol": symbol,
        "3. Last Refreshed": last,
        "4. Interval": interval,
        "5. Output Size": "Full size" if full else "Compact",
        "6. Time Zone": "US/Eastern",
    }
    return json_reply({"Meta Data": meta, f"Time Series ({interval})": series})


def stooq_text(name: str) -> Reply:
    html = name in ("apikey_page", "pow_challenge")
    return Reply(
        200, "text/html; charset=utf-8" if html else "text/plain; charset=utf-8", STOOQ_BODIES[name].encode()
    )


def stooq(symbol: str | None, params: dict[str, str], empty: bool = False) -> Reply:
    """Answer ``/q/d/l/``; ``symbol`` is the canonical sample symbol or None when unknown."""
    if not params.get("apikey"):
        page = STOOQ_BODIES["apikey_page"].replace("{sym}", params.get("s", ""))
        return Reply(200, "text/html; charset=utf-8", page.encode())
    if symbol is None or params.get("i", "d") != "d":
        return stooq_text("no_data")
    try:
        first = _stooq_date(params.get("d1"), dt.date.min)
        last = _stooq_date(params.get("d2"), dt.date.max)
    except ValueError:
        return stooq_text("no_data")
    bars = [] if empty else [b for b in sample.true_bars(symbol) if first <= b.date <= last]
    if not bars:
        return stooq_text("no_data")
    unit_jump = sample.defect(symbol, "stooq", "price_unit_jump")
    lines = ["Date,Open,High,Low,Close,Volume"]
    for b in bars:
        scale = 100.0 if b.date == unit_jump else 1.0
        prices = [_short(b.split_adjusted(x) * scale) for x in (b.open, b.high, b.low, b.close)]
        lines.append(f"{b.date.isoformat()},{','.join(prices)},{round(b.volume * b.split_factor)}")
    return Reply(200, "text/csv; charset=utf-8", ("\r\n".join(lines) + "\r\n").encode())


def _stooq_date(text: str | None, default: dt.date) -> dt.date:
    if not text:
        return default
    return dt.datetime.strptime(text, "%Y%m%d").date()


def _short(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")
