"""``dividend_adjustment``: does the provider's adjusted close carry the dividends and splits?

The ratio ``a = adjusted_close / close`` must be piecewise constant. Between bar t-1 and t it may
only step where an action is dated t, and the step ``a[t-1] / a[t]`` must be
``1 - dividend / close[t-1]`` for a dividend (CRSP/Yahoo convention) times ``1 / split_ratio`` for a
split when ``close`` is as traded (or 1 when the close is split-adjusted too). Vendors round the
adjusted close to a cent, so the tolerance grows as prices shrink.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxq_data.quality.findings import Check, Issue

if TYPE_CHECKING:
    import pandas as pd

STEP_REL_TOL = 2e-4  # float noise of a properly computed ratio
CENT = 0.011  # two values each rounded to half a cent, in price units
DIV_SIZE_TOL = 0.2  # a step may miss the dividend's size by this share before it is wrong


def _tolerance(close: float) -> float:
    return STEP_REL_TOL + (CENT / close if close > 0 else 0.0)


def _expected_steps(prev_close: float, dividend: float, split: float) -> list[float]:
    div_step = 1.0 - dividend / prev_close if dividend > 0 and prev_close > dividend else 1.0
    return [div_step] if split == 1.0 else [div_step / split, div_step]


def check_dividend_adjustment(series: pd.DataFrame, actions: pd.DataFrame) -> list[Issue]:
    """One finding per bad step date. No adjusted_close at all -> nothing to check."""
    rows = series[series["adjusted_close"].notna() & (series["close"] > 0) & (series["adjusted_close"] > 0)]
    if len(rows) < 2:
        return []
    events = {d: (div, split) for d, div, split in zip(actions["date"], actions["dividend"], actions["split_ratio"])}
    ratio = (rows["adjusted_close"] / rows["close"]).tolist()
    closes, dates = rows["close"].tolist(), rows["date"].tolist()
    out = []
    for i in range(1, len(rows)):
        step = ratio[i - 1] / ratio[i]
        dividend, split = events.get(dates[i], (0.0, 1.0))
        expected = _expected_steps(closes[i - 1], dividend, split)
        tol = _tolerance(min(closes[i - 1], closes[i]))
        if dividend > 0:
            tol = max(tol, DIV_SIZE_TOL * (1.0 - expected[-1]))
        if any(abs(step - e) <= tol * max(e, 1e-9) for e in expected):
            continue
        out.append(Issue(dates[i].date(), Check.DIVIDEND_ADJUSTMENT, _describe(step, expected[-1], dividend, split,
                                                                              closes[i - 1])))
    return out


def _describe(step: float, expected: float, dividend: float, split: float, prev_close: float) -> str:
    seen = f"adjusted_close/close steps by x{step:.5f}"
    if dividend > 0:
        implied = (1.0 - step) * prev_close
        return (f"{seen} at ex-dividend {dividend:g}; expected x{expected:.5f} (1 - {dividend:g}/{prev_close:g})"
                f", the adjustment implies a dividend of {implied:.4g}")
    if split != 1.0:
        return f"{seen} at split {split:g}; expected x{1 / split:.5g} (as-traded close) or x1"
    return f"{seen} on a date with no dividend or split (the ratio should be constant here)"

