"""Level jumps: 100x unit mix-ups and splits that the prices and the actions disagree about.

Both checks look at the day-over-day close ratio ``q = close[t] / close[t-1]``:

* ``price_unit_jump``: ``q`` (or ``1/q``) in [80, 125] (pence/pounds, cents/rand ...) with no split
  event of that size on the date. One finding on each date the level changes; the detail says how
  long the shifted level lasts and whether it reverts.
* ``unadjusted_split``: ``q`` within 4 % of ``1/k`` or ``k`` for a common split factor ``k`` with no
  matching split event on the date, confirmed by a revert within 20 bars, an inverse volume step, or
  a split event of that size near the date (the wrong date); or a split event whose bar does not show
  what the series' basis says it should (as-traded close: a jump of 1/ratio; split-adjusted close:
  no jump; a jump of 1/ratio² means the split was applied twice / not at all by the provider).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cxq_data.quality.findings import Check, Issue

if TYPE_CHECKING:
    import pandas as pd

UNIT_RANGE = (80.0, 125.0)
SPLIT_FACTORS = (2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0)
SPLIT_TOL = 0.04  # relative distance of q to 1/k
REVERT_WINDOW = 20  # bars within which an excursion counts as reverting
NEAR_EVENT_WINDOW = 5  # bars: a split event this close but on another date marks a wrong date


@dataclass(frozen=True)
class SplitBasis:
    """How a source's close relates to splits: ``as_traded``, ``split_adjusted`` or ``unknown``."""

    value: str = "unknown"


def _near(value: float, target: float, tol: float) -> bool:
    return abs(value / target - 1.0) <= tol


def split_factor_of(q: float) -> float | None:
    """The split factor k (as a signed ratio: 1/k for a forward split drop) that q matches."""
    if not q or math.isnan(q) or q <= 0:
        return None
    for k in SPLIT_FACTORS:
        for target in (1.0 / k, k):
            if _near(q, target, SPLIT_TOL):
                return target
    return None


def _is_unit(q: float) -> bool:
    lo, hi = UNIT_RANGE
    return lo <= q <= hi or lo <= (1.0 / q if q else 0) <= hi


def _reverts(closes: pd.Series, idx: int, q: float) -> int | None:
    """Index of a later jump that undoes the one at ``idx`` (within REVERT_WINDOW), else None."""
    ratio = closes / closes.shift(1)
    for j in range(idx + 1, min(idx + 1 + REVERT_WINDOW, len(closes))):
        r = ratio.iat[j]
        if r and not math.isnan(r) and abs(math.log(r) + math.log(q)) <= abs(math.log(q)) * 0.15:
            return j
    return None


def _close_ratios(series: pd.DataFrame) -> pd.Series:
    return series["close"] / series["close"].shift(1)


def check_price_unit_jump(series: pd.DataFrame, actions: pd.DataFrame) -> list[Issue]:
    ratios = _close_ratios(series)
    splits = dict(zip(actions["date"], actions["split_ratio"])) if len(actions) else {}
    out: list[Issue] = []
    undone: dict[int, str] = {}  # bar index -> date of the jump it undoes
    for idx in range(1, len(series)):
        q = ratios.iat[idx]
        if not q or math.isnan(q) or not _is_unit(q):
            continue
        date = series.at[idx, "date"]
        r = splits.get(date)
        if r and _near(q, 1.0 / r, 0.1):  # a real 1:100 split, announced
            continue
        back = _reverts(series["close"], idx, q)
        if back is not None:
            undone[back] = str(date.date())
        tail = (f"undoes the jump of {undone[idx]}" if idx in undone else f"reverts on {series.at[back, 'date'].date()} after {back - idx} bars" if back is not None
                else "persists to the end of the data" if idx + REVERT_WINDOW >= len(series) else "persists")
        out.append(Issue(date.date(), Check.PRICE_UNIT_JUMP,
                         f"close {series.at[idx - 1, 'close']:g} -> {series.at[idx, 'close']:g} (x{q:.4g}), "
                         f"a ~100x unit change with no corporate action; {tail}"))
    return out


def _volume_confirms(series: pd.DataFrame, idx: int, q: float) -> bool:
    """Volume moves inversely to price across the jump (shares were split, not the price)."""
    vol = series["volume"]
    before = vol.iloc[max(0, idx - 5):idx].median()
    after = vol.iloc[idx:idx + 5].median()
    if not before or not after or math.isnan(before) or math.isnan(after):
        return False
    step = after / before
    return 1.0 / q / 2.5 <= step <= 1.0 / q * 2.5 and abs(math.log(step)) >= abs(math.log(q)) * 0.5


def _jumps_without_event(series: pd.DataFrame, actions: pd.DataFrame) -> list[Issue]:
    ratios = _close_ratios(series)
    split_dates = {d: r for d, r in zip(actions["date"], actions["split_ratio"]) if r != 1.0}
    dates = list(series["date"])
    out = []
    for idx in range(1, len(series)):
        q = ratios.iat[idx]
        target = split_factor_of(q)
        if target is None or dates[idx] in split_dates:
            continue
        window = dates[max(0, idx - NEAR_EVENT_WINDOW):idx + NEAR_EVENT_WINDOW + 1]
        near = [d for d in window if d in split_dates
                and (_near(split_dates[d], 1.0 / q, 0.15) or _near(split_dates[d], q, 0.15))]
        back = _reverts(series["close"], idx, q)
        reasons = []
        if near:
            reasons.append(f"split event {split_dates[near[0]]:g} is dated {near[0].date()}")
        if back is not None:
            reasons.append(f"reverts on {dates[back].date()}")
        if _volume_confirms(series, idx, q):
            reasons.append("volume moves inversely")
        if not reasons:
            continue
        prev_idx = idx - 1
        if any(i.date == dates[prev_idx].date() for i in out):  # the revert of an excursion just flagged
            continue
        out.append(Issue(dates[idx].date(), Check.UNADJUSTED_SPLIT,
                         f"close {series.at[prev_idx, 'close']:g} -> {series.at[idx, 'close']:g} (x{q:.4g}, "
                         f"like a 1:{1 / q:.3g} split) with no split event on this date; " + ", ".join(reasons)))
    return out


def _classify(q: float, ratio: float) -> str:
    if math.isnan(q) or q <= 0:
        return "other"
    if _near(q, 1.0 / ratio, 0.12):
        return "jump"
    if _near(q, 1.0 / ratio**2, 0.12):
        return "double"
    if abs(math.log(q)) < abs(math.log(ratio)) * 0.4:
        return "flat"
    return "other"


def infer_basis(series: pd.DataFrame, actions: pd.DataFrame, declared: str = "unknown") -> str:
    """A declared basis wins; otherwise the majority of split events decides (ties: unknown)."""
    if declared != "unknown":
        return declared
    ratios = _close_ratios(series).set_axis(series["date"])
    kinds = [_classify(ratios.get(d, math.nan), r) for d, r in zip(actions["date"], actions["split_ratio"])
             if r != 1.0 and d in ratios.index]
    jumps, flats = kinds.count("jump"), kinds.count("flat")
    return "as_traded" if jumps > flats else "split_adjusted" if flats > jumps else "unknown"


def _events_without_jump(series: pd.DataFrame, actions: pd.DataFrame, basis: str) -> list[Issue]:
    ratios = _close_ratios(series).set_axis(series["date"])
    out = []
    for date, ratio in zip(actions["date"], actions["split_ratio"]):
        if ratio == 1.0 or date not in ratios.index or math.isnan(ratios[date]):
            continue
        q = ratios[date]
        kind = _classify(q, ratio)
        expected = {"as_traded": "jump", "split_adjusted": "flat"}.get(basis)
        if kind == "double" or (expected and kind != expected):
            want = f"x{1 / ratio:.4g}" if expected == "jump" else "no jump" if expected else "x1 or x1/ratio"
            out.append(Issue(date.date(), Check.UNADJUSTED_SPLIT,
                             f"split event {ratio:g} on this date but close moves x{q:.4g} "
                             f"({'applied twice / not applied by the provider' if kind == 'double' else kind}); "
                             f"a {basis.replace('_', '-')} close should show {want}"))
    return out


def check_unadjusted_split(series: pd.DataFrame, actions: pd.DataFrame, basis: str = "unknown") -> list[Issue]:
    basis = infer_basis(series, actions, basis)
    return _jumps_without_event(series, actions) + _events_without_jump(series, actions, basis)
