"""Our own split- and dividend-adjusted prices (CRSP-style backward factors) and where a provider's
adjusted close disagrees with them.

For each ex-date ``d`` with dividend ``D`` and split ratio ``r`` (new shares per old share), every bar
before ``d`` is multiplied by ``(1 - D / close[d-1]) / r``; volume before ``d`` by ``r``. The last bar
keeps factor 1, so adjusted and as-traded prices agree today (the Yahoo convention). The SQL twin of
:func:`backward_adjust` is the ``daily_adjusted`` view (:mod:`cxq_data.quality.views`); both map an
action dated on a non-trading day to the next bar.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from cxq_data.quality.frames import prepare_actions, prepare_series

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd

    from cxq_data.paths import DataLayout


def _events_on_bars(series: pd.DataFrame, actions: pd.DataFrame) -> pd.DataFrame:
    """Actions moved to the first bar on/after their date, combined per bar."""
    import numpy as np

    dates = series["date"].to_numpy()
    pos = np.searchsorted(dates, actions["date"].to_numpy(), side="left")
    keep = pos < len(series)
    ev = actions[keep].assign(bar=pos[keep])
    return ev.groupby("bar").agg(dividend=("dividend", "sum"), split_ratio=("split_ratio", "prod"))


def backward_adjust(series: pd.DataFrame, actions: pd.DataFrame | None) -> pd.DataFrame:
    """Series with ``adj_factor``, ``split_factor``, ``adjusted_open/high/low/close``,
    ``adjusted_volume`` and ``provider_adjusted_close`` (the input's adjusted_close)."""
    import numpy as np

    s = prepare_series(series).drop_duplicates("date", keep="last").reset_index(drop=True)
    ev = _events_on_bars(s, prepare_actions(actions))
    prev_close = s["close"].shift(1)
    div = ev["dividend"].reindex(s.index, fill_value=0.0)
    split = ev["split_ratio"].reindex(s.index, fill_value=1.0)
    div_factor = np.where((div > 0) & (prev_close > div), 1.0 - div / prev_close, 1.0)
    event_factor = div_factor / split.to_numpy()
    # factor of bar t = product of event factors of bars after t
    later = np.concatenate([np.cumprod(event_factor[::-1])[::-1][1:], [1.0]])
    split_later = np.concatenate([np.cumprod((1.0 / split.to_numpy())[::-1])[::-1][1:], [1.0]])
    out = s.rename(columns={"adjusted_close": "provider_adjusted_close"})
    out["adj_factor"] = later
    out["split_factor"] = split_later
    for col in ("open", "high", "low", "close"):
        out[f"adjusted_{col}"] = out[col] * later
    out["adjusted_volume"] = out["volume"] / split_later
    return out


@dataclass(frozen=True)
class AdjustmentDifference:
    """A date where the provider's adjusted close and ours differ by more than the tolerance."""

    date: dt.date
    close: float
    provider_adjusted_close: float
    our_adjusted_close: float
    deviation_pct: float

    def to_dict(self) -> dict:
        return {"date": self.date.isoformat(), "close": self.close,
                "provider_adjusted_close": self.provider_adjusted_close,
                "our_adjusted_close": self.our_adjusted_close, "deviation_pct": self.deviation_pct}


def adjustment_differences(series: pd.DataFrame, actions: pd.DataFrame | None,
                           tolerance_pct: float = 0.5) -> list[AdjustmentDifference]:
    """Dates where provider adjusted_close deviates from ours by more than ``tolerance_pct`` percent.

    Both are anchored at the last bar, so a difference means the provider applied a different set
    of actions (a missing dividend, a split applied twice, a restated factor).
    """
    adj = backward_adjust(series, actions)
    both = adj.dropna(subset=["provider_adjusted_close", "adjusted_close"])
    both = both[both["adjusted_close"] > 0]
    dev = (both["provider_adjusted_close"] / both["adjusted_close"] - 1.0) * 100.0
    bad = both[dev.abs() > tolerance_pct]
    return [AdjustmentDifference(row.date.date(), float(row.close), float(row.provider_adjusted_close),
                                 float(row.adjusted_close), float(dev[i]))
            for i, row in bad.iterrows()]


def provider_adjustment_differences(layout: DataLayout, symbol: str, source: str,
                                    tolerance_pct: float = 0.5) -> list[AdjustmentDifference]:
    """:func:`adjustment_differences` for one symbol/source of the lake."""
    from cxq_data.errors import CxqError
    from cxq_data.quality.loader import load_frames

    frames = load_frames(layout, symbol, [source])
    if source not in frames:
        raise CxqError(f"{symbol}: no daily data from source {source} in {layout.root}")
    series, actions = frames[source]
    return adjustment_differences(series, actions, tolerance_pct)
