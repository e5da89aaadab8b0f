"""Seeded defect injector: realistic clean series, and the same series with one labelled defect.

A clean series is a geometric random walk on the real XNYS calendar with consistent OHLC, volume
with spikes, quarterly dividends, sometimes a real split (as traded, with its event), and "hard
negatives" a check must not flag: genuine -35..+38 % days with heavy volume (below the 40 %
return_outlier threshold), holidays. :func:`cases` yields ``n`` labelled cases per check plus ``n`` clean controls (each control
also has an older raw fetch that differs by one constant re-adjustment factor).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cxq_data.quality.findings import Check
from cxq_data.quality.history import Fetch

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

SYMBOL = "SYN"
SPLIT_CHOICES = (2.0, 3.0, 4.0, 5.0, 10.0, 0.1, 0.5)


@dataclass
class Case:
    check: Check | None  # None = clean control
    series: pd.DataFrame
    actions: pd.DataFrame
    window: tuple[dt.date, dt.date] | None  # dates where the finding is expected (inclusive)
    fetches: list[Fetch] = field(default_factory=list)


def clean_series(rng: np.random.Generator, bars: int = 260) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(series with as-traded close and a correct adjusted_close, actions)."""
    import numpy as np
    import pandas as pd

    from cxq_data.quality.adjust import backward_adjust
    from cxq_data.quality.sessions import sessions_between

    start = dt.date(2015, 1, 2) + dt.timedelta(days=int(rng.integers(0, 2500)))
    sessions = sessions_between("XNYS", start, start + dt.timedelta(days=int(bars * 1.6)))[:bars]
    n = len(sessions)
    rets = rng.normal(0.0003, rng.uniform(0.008, 0.025), n)
    if rng.random() < 0.5:  # a genuine crash or rally with heavy volume: a hard negative
        rets[rng.integers(20, n - 20)] = rng.choice([-0.35, -0.25, -0.2, 0.3, 0.38])
    close = rng.uniform(5, 400) * np.exp(np.cumsum(np.log1p(rets)))
    volume = rng.lognormal(np.log(rng.uniform(2e4, 5e6)), 0.35, n)
    volume[np.abs(rets) > 0.15] *= 5
    actions = _dividends(rng, sessions, close)
    if rng.random() < 0.3:  # a real split, as traded, announced
        i, r = int(rng.integers(30, n - 30)), float(rng.choice(SPLIT_CHOICES))
        close[:i] *= r
        volume[:i] /= r
        actions.append((sessions[i], 0.0, r))
    gap = rng.normal(0, 0.004, n)
    open_ = np.concatenate([[close[0]], close[:-1]]) * (1 + gap)
    spread = np.abs(rng.normal(0, 0.01, n))
    series = pd.DataFrame({
        "date": sessions, "open": open_, "close": close,
        "high": np.maximum(open_, close) * (1 + spread), "low": np.minimum(open_, close) * (1 - spread),
        "adjusted_close": np.nan, "volume": np.round(volume),
    })
    acts = pd.DataFrame(actions, columns=["date", "dividend", "split_ratio"])
    series["adjusted_close"] = backward_adjust(series, acts)["adjusted_close"].to_numpy()
    return series, acts


def _dividends(rng: np.random.Generator, sessions: pd.DatetimeIndex, close: np.ndarray) -> list:
    if rng.random() < 0.3:
        return []
    y = rng.uniform(0.003, 0.012)
    return [(sessions[i], round(float(close[i - 1] * y), 2), 1.0) for i in range(40, len(sessions) - 5, 63)]


def _pick(rng: np.random.Generator, s: pd.DataFrame, margin: int = 25) -> int:
    return int(rng.integers(margin, len(s) - margin))


def _day(s: pd.DataFrame, i: int) -> dt.date:
    return s.at[i, "date"].date()


def _scale(s: pd.DataFrame, rows: slice | list[int], k: float, volume: bool = False) -> None:
    cols = ["open", "high", "low", "close", "adjusted_close"]
    s.loc[s.index[rows], cols] *= k
    if volume:
        s.loc[s.index[rows], "volume"] /= k


Injected = tuple["pd.DataFrame", "pd.DataFrame", tuple[dt.date, dt.date], list[Fetch]]


def _ohlc(rng, s, a):
    i = _pick(rng, s)
    if rng.random() < 0.5:
        s.at[i, "high"] = max(s.at[i, "open"], s.at[i, "close"]) * (1 - rng.uniform(0.003, 0.05))
    else:
        s.at[i, "low"] = min(s.at[i, "open"], s.at[i, "close"]) * (1 + rng.uniform(0.003, 0.05))
    return i, i


def _non_positive(rng, s, a):
    i = _pick(rng, s)
    col = str(rng.choice(["open", "high", "low", "close"]))
    s.at[i, col] = float(rng.choice([0.0, -0.01, -s.at[i, col]]))
    return i, i


def _null(rng, s, a):
    i = _pick(rng, s)
    s.at[i, str(rng.choice(["open", "high", "low", "close"]))] = float("nan")
    return i, i


def _stale(rng, s, a):
    i, n = _pick(rng, s, 30), int(rng.integers(5, 12))
    cols = ["open", "high", "low", "close", "adjusted_close"]  # the provider repeats the whole bar
    s.loc[s.index[i + 1:i + n], cols] = s.loc[i, cols].to_numpy()
    return i, i + n - 1


def _zero_volume(rng, s, a):
    i = _pick(rng, s)
    s.at[i, "volume"] = 0.0
    return i, i


def _negative_volume(rng, s, a):
    i = _pick(rng, s)
    s.at[i, "volume"] = -float(rng.choice([1.0, max(s.at[i, "volume"], 1.0)]))
    return i, i


def _unit_jump(rng, s, a):
    i = _pick(rng, s)
    end = len(s) if rng.random() < 0.3 else i + int(rng.integers(1, 15))
    _scale(s, slice(i, end), float(rng.choice([100.0, 0.01])))
    return i, min(end, len(s) - 1)


def _unadjusted_split(rng, s, a):
    i, k = _pick(rng, s), float(rng.choice(SPLIT_CHOICES))
    if rng.random() < 0.5:  # one bar left at its pre-split as-traded price (the MOB.ST defect)
        _scale(s, [i], 1.0 / k, volume=True)
        return i, i + 1
    _scale(s, slice(0, i), k, volume=True)  # a split the provider never announced
    a.loc[a["date"] < s.at[i, "date"], "dividend"] *= k  # earlier dividends were per pre-split share
    return i, i


def _outlier(rng, s, a):
    i = _pick(rng, s)
    ranges = [(1.55, 1.85), (2.2, 2.8), (0.36, 0.45), (0.56, 0.65)]
    lo, hi = ranges[int(rng.integers(0, len(ranges)))]
    _scale(s, [i], float(rng.uniform(lo, hi)))
    return i, i + 1


def _drop_row(rng, s, a):
    i = _pick(rng, s)
    day = s.at[i, "date"]
    s.drop(index=i, inplace=True)
    return day, day


def _extra_row(rng, s, a):
    import pandas as pd

    i = _pick(rng, s)
    day = s.at[i, "date"] + pd.Timedelta(days=1)
    while day.weekday() < 5:
        day += pd.Timedelta(days=1)
    s.loc[len(s)] = {**s.loc[i].to_dict(), "date": day}
    return day, day


def _duplicate(rng, s, a):
    i = _pick(rng, s)
    row = s.loc[i].to_dict()
    row["close"] *= 1 + rng.choice([-1, 1]) * rng.uniform(0.001, 0.03)
    s.loc[len(s)] = row
    return s.at[i, "date"], s.at[i, "date"]


def _dividend(rng, s, a):
    import numpy as np

    if a.empty or (a["dividend"] > 0).sum() == 0:
        i = _pick(rng, s)
        a.loc[len(a)] = {"date": s.at[i, "date"], "dividend": round(float(s.at[i - 1, "close"] * 0.01), 2), "split_ratio": 1.0}
        return i, i  # the provider's adjusted close (computed before) misses this new dividend
    ex = a[a["dividend"] > 0].sample(1, random_state=int(rng.integers(0, 2**31))).iloc[0]
    i = int(np.searchsorted(s["date"].to_numpy(), ex["date"].to_datetime64()))
    factor = 1.0 - ex["dividend"] / s.at[i - 1, "close"]
    if rng.random() < 0.5:
        s.loc[s.index[:i], "adjusted_close"] /= factor  # the dividend is missing from adjusted close
        return i, i
    s.at[i - 1, "adjusted_close"] /= factor  # step one bar late
    return i - 1, i


def _restated(rng, s, a):
    """Old fetch = the first 80 % of bars, a constant re-adjustment, and a few changed values."""
    old = s.iloc[: int(len(s) * 0.8)].copy()
    old[["open", "high", "low", "close", "adjusted_close"]] *= 1.0 / rng.uniform(0.97, 0.999)
    i = _pick(rng, old)
    old.at[i, "close"] *= 1 + rng.choice([-1, 1]) * rng.uniform(0.002, 0.05)
    fetches = [Fetch(dt.datetime(2024, 1, 1), "old", old), Fetch(dt.datetime(2024, 6, 1), "new", s.copy())]
    return i, i, fetches


INJECTORS: dict[Check, Callable[..., Any]] = {
    Check.OHLC_INCONSISTENT: _ohlc, Check.NON_POSITIVE_PRICE: _non_positive, Check.NULL_PRICE: _null,
    Check.DUPLICATE_DATE: _duplicate, Check.MISSING_SESSION: _drop_row, Check.EXTRA_SESSION: _extra_row,
    Check.PRICE_UNIT_JUMP: _unit_jump, Check.UNADJUSTED_SPLIT: _unadjusted_split,
    Check.DIVIDEND_ADJUSTMENT: _dividend, Check.ZERO_VOLUME: _zero_volume, Check.STALE_PRICE: _stale,
    Check.NEGATIVE_VOLUME: _negative_volume,
    Check.RETURN_OUTLIER: _outlier, Check.RESTATED_HISTORY: _restated,
}


def _clean_fetches(rng: np.random.Generator, s: pd.DataFrame) -> list[Fetch]:
    old = s.iloc[: int(len(s) * 0.8)].copy()
    old[["adjusted_close"]] *= 1.0 / rng.uniform(0.97, 0.999)  # a new dividend rescaled history: fine
    return [Fetch(dt.datetime(2024, 1, 1), "old", old), Fetch(dt.datetime(2024, 6, 1), "new", s.copy())]


def inject(check: Check, rng: np.random.Generator) -> Case:
    series, actions = clean_series(rng)
    out = INJECTORS[check](rng, series, actions)
    fetches = out[2] if len(out) == 3 else _clean_fetches(rng, series)
    lo, hi = (_day(series, b) if isinstance(b, (int,)) else b.date() for b in out[:2])
    series = series.sort_values("date", kind="stable").reset_index(drop=True)
    return Case(check, series, actions, (lo, hi), fetches)


def cases(n: int = 50, seed: int = 7, checks: list[Check] | None = None) -> list[Case]:
    """``n`` labelled cases per check, then ``n`` clean controls; same seed -> same cases."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = [inject(check, rng) for check in (checks or list(Check)) for _ in range(n)]
    for _ in range(n):
        series, actions = clean_series(rng)
        out.append(Case(None, series, actions, None, _clean_fetches(rng, series)))
    return out
