"""``missing_session`` / ``extra_session`` against the exchange's real trading calendar.

The exchange comes from the symbol's suffix (``AET.L`` -> XLON) or, for plain US tickers, the
configured default (XNYS). Only the span between the first and the last bar is checked: a series
that starts late is not "missing" its early years.
"""

from __future__ import annotations

import datetime as dt
from functools import lru_cache
from typing import TYPE_CHECKING

from cxq_data.errors import ConfigError
from cxq_data.quality.findings import Check, Issue
from cxq_data.symbols import DEFAULT_EXCHANGE, parse_symbol

if TYPE_CHECKING:
    import pandas as pd


def exchange_for(symbol: str, default_exchange: str = DEFAULT_EXCHANGE) -> str:
    """exchange_calendars code for a symbol: its suffix's exchange, else ``default_exchange``."""
    parsed = parse_symbol(symbol)
    return parsed.exchange if parsed.exchange_suffix else default_exchange


def check_exchange(code: str, key: str = "default_exchange") -> str:
    """``code`` if exchange_calendars knows it (XNYS, XLON, an alias such as NYSE), else a ConfigError
    naming ``key``, so a typo fails when the config is read, not in every validate job. The default
    is known without importing exchange_calendars (~0.4 s, paid by every Snakemake start)."""
    if code == DEFAULT_EXCHANGE:
        return code
    import exchange_calendars as xcals

    if code not in xcals.get_calendar_names(include_aliases=True):
        raise ConfigError(f"{key}: unknown exchange calendar {code!r} (an exchange_calendars code such as XNYS, XLON)")
    return code


@lru_cache(maxsize=64)
def _sessions(exchange: str, start: dt.date, end: dt.date) -> pd.DatetimeIndex:
    import exchange_calendars as xcals
    import pandas as pd

    try:
        cal = xcals.get_calendar(exchange, start=pd.Timestamp(start), end=pd.Timestamp(end))
    except xcals.errors.InvalidCalendarName as exc:
        raise ConfigError(f"unknown exchange calendar {exchange!r} (use an exchange_calendars code such as XNYS)") from exc
    return cal.sessions_in_range(cal.first_session, cal.last_session)


def sessions_between(exchange: str, first: dt.date, last: dt.date) -> pd.DatetimeIndex:
    """Trading sessions from first to last inclusive (calendar built for whole years, cached)."""
    import pandas as pd

    sessions = _sessions(exchange, dt.date(first.year, 1, 1), dt.date(last.year, 12, 31))
    return sessions[(sessions >= pd.Timestamp(first)) & (sessions <= pd.Timestamp(last))]


def check_sessions(series: pd.DataFrame, exchange: str) -> list[Issue]:
    dates = series["date"].dropna().drop_duplicates()
    if dates.empty:
        return []
    sessions = sessions_between(exchange, dates.min().date(), dates.max().date())
    have = set(dates)
    out = [Issue(s.date(), Check.MISSING_SESSION, f"{exchange} session with no bar")
           for s in sessions if s not in have]
    expected = set(sessions)
    out += [Issue(d.date(), Check.EXTRA_SESSION, f"bar on {d.day_name()} {d.date()}, not a {exchange} session")
            for d in sorted(have) if d not in expected]
    return sorted(out, key=lambda i: i.date)
