"""Agreement matrix: for each symbol and each pair of sources, how often they agree and where worst.

A date agrees when the two sources' daily returns (adjusted series, see :mod:`compare`) differ by at
most the tolerance in percentage points; returns are comparable even where levels are adjusted
differently. ``close_agreement`` gives the same share for raw close levels.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from cxq_data.paths import DataLayout


@dataclass(frozen=True)
class PairAgreement:
    symbol: str
    source_a: str
    source_b: str
    dates_compared: int
    agreement_rate: float | None  # share of dates whose returns agree within tolerance
    close_agreement: float | None
    worst_date: str | None
    worst_deviation_pct: float | None  # return difference in percentage points on worst_date

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def pair_agreement(symbol: str, a: str, b: str, frames: dict[str, tuple[pd.DataFrame, Any]],
                   tolerance_pct: float = 1.0) -> PairAgreement:
    from cxq_data.quality.compare import _aligned, _deviation

    df = _aligned({a: frames[a], b: frames[b]})
    ret = _deviation(df, "return", a, b).dropna()
    close = _deviation(df, "close", a, b).dropna()
    if ret.empty:
        return PairAgreement(symbol, a, b, len(df), None, None, None, None)
    worst = ret.abs().idxmax()
    return PairAgreement(
        symbol, a, b, len(df),
        agreement_rate=round(float((ret.abs() <= tolerance_pct).mean()), 6),
        close_agreement=round(float((close.abs() <= tolerance_pct).mean()), 6) if len(close) else None,
        worst_date=worst.date().isoformat(), worst_deviation_pct=round(float(ret[worst]), 6),
    )


def matrix_frames(frames_by_symbol: dict[str, dict[str, tuple[pd.DataFrame, Any]]], sources: list[str],
                  tolerance_pct: float = 1.0) -> list[PairAgreement]:
    out = []
    for symbol, frames in frames_by_symbol.items():
        for a, b in combinations(sources, 2):
            if a in frames and b in frames:
                out.append(pair_agreement(symbol, a, b, frames, tolerance_pct))
            else:
                out.append(PairAgreement(symbol, a, b, 0, None, None, None, None))
    return out


def matrix(layout: DataLayout, symbols: list[str], sources: list[str], tolerance_pct: float = 1.0,
           plot: str | None = None) -> list[PairAgreement]:
    """Agreement of every source pair for every symbol; optionally a heat-map PNG at ``plot``."""
    from cxq_data.quality.loader import load_frames

    frames = {symbol: load_frames(layout, symbol, sources) for symbol in symbols}
    rows = matrix_frames(frames, sources, tolerance_pct)
    if plot:
        from cxq_data.quality.plots import plot_matrix

        plot_matrix(rows, plot)
    return rows
