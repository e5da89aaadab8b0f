"""Checks that look at one bar (or a short run of bars) at a time.

Each function takes the prepared series (see :mod:`cxq_data.quality.frames`) and returns
:class:`Issue` records; they never read files.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cxq_data.quality.findings import Check, Issue
from cxq_data.quality.frames import PRICE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd

# Prices carry float noise (Yahoo float32 -> float64); a high below the close by less than this is
# rounding, not a bad bar.
OHLC_REL_TOL = 1e-5


@dataclass(frozen=True)
class BarRules:
    stale_sessions: int = 5  # identical OHLC for this many sessions in a row -> stale_price
    return_threshold: float = 0.4  # |action-explained daily return| above this -> return_outlier
    zero_volume_window: int = 20  # a zero is odd only where the symbol normally trades


def _day(ts: pd.Timestamp):
    return ts.date()


def check_null_price(series: pd.DataFrame) -> list[Issue]:
    nulls = series[PRICE_COLUMNS].isna()
    out = []
    for idx in series.index[nulls.any(axis=1)]:
        cols = [c for c in PRICE_COLUMNS if nulls.at[idx, c]]
        out.append(Issue(_day(series.at[idx, "date"]), Check.NULL_PRICE, f"null {', '.join(cols)}"))
    return out


def check_non_positive(series: pd.DataFrame) -> list[Issue]:
    cols = PRICE_COLUMNS + ["adjusted_close"]
    bad = series[cols] <= 0
    out = []
    for idx in series.index[bad.any(axis=1)]:
        parts = [f"{c}={series.at[idx, c]:g}" for c in cols if bad.at[idx, c]]
        out.append(Issue(_day(series.at[idx, "date"]), Check.NON_POSITIVE_PRICE, "price <= 0: " + ", ".join(parts)))
    return out


def check_negative_volume(series: pd.DataFrame) -> list[Issue]:
    """A traded quantity below zero: no market event explains it (a sign or overflow bug upstream)."""
    vol = series["volume"]
    return [Issue(_day(series.at[idx, "date"]), Check.NEGATIVE_VOLUME, f"volume {vol[idx]:,.0f} < 0")
            for idx in series.index[vol < 0]]


def check_ohlc(series: pd.DataFrame) -> list[Issue]:
    o, h, l, c = (series[k] for k in PRICE_COLUMNS)
    top = series[["open", "close", "low"]].max(axis=1)
    bottom = series[["open", "close", "high"]].min(axis=1)
    high_bad = h < top * (1 - OHLC_REL_TOL)
    low_bad = l > bottom * (1 + OHLC_REL_TOL)
    out = []
    for idx in series.index[high_bad | low_bad]:
        why = []
        if high_bad[idx]:
            why.append(f"high {h[idx]:g} < max(open, close, low) {top[idx]:g}")
        if low_bad[idx]:
            why.append(f"low {l[idx]:g} > min(open, close, high) {bottom[idx]:g}")
        out.append(Issue(_day(series.at[idx, "date"]), Check.OHLC_INCONSISTENT,
                         f"{'; '.join(why)} (open {o[idx]:g}, close {c[idx]:g})"))
    return out


def check_duplicates(series: pd.DataFrame) -> list[Issue]:
    """Two rows for one date in the served series (the raw-layer variant is in history.py)."""
    dup = series[series.duplicated("date", keep=False)]
    out = []
    for date, rows in dup.groupby("date"):
        closes = rows["close"].tolist()
        kind = "conflicting" if rows.drop(columns="date").drop_duplicates().shape[0] > 1 else "identical"
        out.append(Issue(date.date(), Check.DUPLICATE_DATE, f"{len(rows)} {kind} rows for one date (close {closes})"))
    return out


def check_zero_volume(series: pd.DataFrame, rules: BarRules = BarRules()) -> list[Issue]:
    """Zero volume on a day the price moved, or in a symbol that normally trades every day."""
    vol = series["volume"]
    moved = (series["open"] != series["close"]) | (series["high"] != series["low"])
    usual = vol.rolling(rules.zero_volume_window, center=True, min_periods=3).median()
    odd = (vol == 0) & (moved | (usual > 0))
    out = []
    for idx in series.index[odd]:
        why = "price moved (open {:g}, close {:g}, high {:g}, low {:g})".format(
            *(series.at[idx, k] for k in ("open", "close", "high", "low"))) if moved[idx] else \
            f"usual volume around this date is {usual[idx]:,.0f}"
        out.append(Issue(_day(series.at[idx, "date"]), Check.ZERO_VOLUME, f"volume 0 but {why}"))
    return out


def check_stale(series: pd.DataFrame, rules: BarRules = BarRules()) -> list[Issue]:
    """A run of >= N bars with identical OHLC; one finding at the first bar of the run."""
    prices = series[PRICE_COLUMNS]
    same = (prices == prices.shift(1)).all(axis=1)
    run_id = (~same).cumsum()
    sizes = run_id.map(run_id.value_counts())
    starts = series.index[(~same) & (sizes >= rules.stale_sessions) & prices.notna().all(axis=1)]
    out = []
    for idx in starts:
        length = int(sizes[idx])
        first, last = series.at[idx, "date"].date(), series.at[idx + length - 1, "date"].date()
        out.append(Issue(first, Check.STALE_PRICE,
                         f"identical OHLC ({series.at[idx, 'close']:g}) for {length} bars {first}..{last}"))
    return out


def action_explained_returns(series: pd.DataFrame, actions: pd.DataFrame) -> pd.Series:
    """Daily close-to-close return with the day's split and dividend put back.

    On a split date the smaller of the two readings wins: an as-traded close moves by the split, a
    split-adjusted close does not, and both are fine here (unadjusted_split judges the basis).
    """
    import numpy as np

    prev = series["close"].shift(1)
    if not len(actions):
        return series["close"] / prev - 1.0
    ev = actions.set_index("date")
    split = series["date"].map(ev["split_ratio"]).fillna(1.0)
    div = series["date"].map(ev["dividend"]).fillna(0.0)
    with_split = (series["close"] * split + div) / prev - 1.0
    without = (series["close"] + div) / prev - 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        use_split = np.log1p(with_split).abs() <= np.log1p(without).abs()
    return with_split.where(use_split | with_split.isna(), without)


def check_return_outlier(series: pd.DataFrame, actions: pd.DataFrame, rules: BarRules = BarRules(),
                         explained: set | None = None) -> list[Issue]:
    """Big returns not explained by an action nor by a level jump another check already reported
    (``explained`` dates); the bar that undoes such a jump within 20 bars is explained too."""
    import numpy as np

    ret = action_explained_returns(series, actions)
    big = series.index[ret.abs() > rules.return_threshold]
    if not len(big):
        return []
    with np.errstate(invalid="ignore", divide="ignore"):
        log_ret = np.log1p(ret)
    explained = explained or set()
    days = [d.date() for d in series["date"]]
    anchors = [i for i, d in enumerate(days) if d in explained]
    out = []
    for idx in big:
        if days[idx] in explained or any(
            0 < idx - a <= 20 and abs(log_ret[idx] + log_ret[a]) <= 0.15 * abs(log_ret[a]) for a in anchors
        ):
            continue
        prev = series.at[idx - 1, "close"]
        out.append(Issue(_day(series.at[idx, "date"]), Check.RETURN_OUTLIER,
                         f"return {ret[idx]:+.1%} (close {prev:g} -> {series.at[idx, 'close']:g}) beyond "
                         f"±{rules.return_threshold:.0%} and not explained by a split or dividend"))
    return out
