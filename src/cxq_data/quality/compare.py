"""Cross-source validation: one symbol from several sources, aligned by date.

Fields compared against the first source named:

* ``close`` and ``adjusted_close`` levels (percent deviation);
* ``return``: daily returns of each source's adjusted series (its own adjusted close, else ours from
  its actions), in percentage points. Sources that adjust levels differently (Stooq) agree here;
* ``volume``: after dividing out the dominant volume ratio. A constant ratio (a vendor that applied
  a split to volume only, or counts in lots) is one explained difference, not a mismatch per day.

``best_shift_days`` is the lag (-1, 0, +1 bar of the other source) at which returns correlate best:
a non-zero value means one source's dates are shifted (time-zone bugs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from cxq_data.paths import DataLayout

LEVEL_FIELDS = ("close", "adjusted_close")
VOLUME_FACTOR_SHARE = 0.8  # this share of dates within 2 % of the median ratio -> constant factor


@dataclass
class CompareResult:
    symbol: str
    sources: list[str]
    tolerance_pct: float
    dates_compared: int
    missing: dict[str, list[str]]
    mismatches: list[dict[str, Any]]
    max_deviation_pct: float | None
    median_deviation_pct: float | None
    return_correlation: float | None
    best_shift_days: int
    shift_correlations: dict[str, float | None] = field(default_factory=dict)
    explained: list[dict[str, Any]] = field(default_factory=list)
    mismatch_counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _adjusted_level(series: pd.DataFrame, actions: pd.DataFrame | None) -> pd.Series:
    """The best adjusted level a source offers (its own adjusted close, else ours), by date."""
    from cxq_data.quality.adjust import backward_adjust

    adj = backward_adjust(series, actions)
    level = adj["provider_adjusted_close"] if adj["provider_adjusted_close"].notna().all() else adj["adjusted_close"]
    return level.set_axis(adj["date"])


def _aligned(frames: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]]) -> pd.DataFrame:
    """One row per date present in all sources; columns ``{field}:{source}``.

    Returns are taken between consecutive common dates, so a date missing in one source does not
    turn into a two-day return compared with a one-day return.
    """
    import pandas as pd

    from cxq_data.quality.frames import prepare_series

    parts = []
    for source, (series, actions) in frames.items():
        s = prepare_series(series).drop_duplicates("date", keep="last").set_index("date")
        part = s[["close", "adjusted_close", "volume"]].copy()
        part["level"] = _adjusted_level(series, actions)
        parts.append(part.add_suffix(f":{source}"))
    df = pd.concat(parts, axis=1, join="inner").sort_index()
    for source in frames:
        level = df.pop(f"level:{source}")
        df[f"return:{source}"] = level / level.shift(1) - 1.0
    return df


def _missing(frames: dict[str, tuple[pd.DataFrame, Any]]) -> dict[str, list[str]]:
    from cxq_data.quality.frames import prepare_series

    dates = {src: set(prepare_series(s)["date"]) for src, (s, _) in frames.items()}
    union = set().union(*dates.values())
    return {src: sorted(d.date().isoformat() for d in union - have) for src, have in dates.items()}


def _deviation(df: pd.DataFrame, fld: str, first: str, other: str, volume_factor: float = 1.0) -> pd.Series:
    a, b = df[f"{fld}:{first}"], df[f"{fld}:{other}"]
    if fld == "return":
        return (b - a) * 100.0  # percentage points
    return (b / (a * volume_factor) - 1.0) * 100.0


def volume_factor(df: pd.DataFrame, first: str, other: str) -> float | None:
    """The constant other/first volume ratio if one explains most dates (and it is not ~1)."""
    ratio = (df[f"volume:{other}"] / df[f"volume:{first}"]).replace([math.inf, -math.inf], math.nan).dropna()
    ratio = ratio[ratio > 0]
    if ratio.empty:
        return None
    factor = float(ratio.median())
    share = float(((ratio / factor - 1.0).abs() <= 0.02).mean())
    return factor if share >= VOLUME_FACTOR_SHARE and abs(factor - 1.0) > 0.02 else None


def _shift_correlations(df: pd.DataFrame, first: str, other: str) -> dict[str, float | None]:
    out = {}
    for shift in (-1, 0, 1):
        a, b = df[f"return:{first}"], df[f"return:{other}"].shift(-shift)
        both = a.notna() & b.notna()
        corr = a[both].corr(b[both]) if both.sum() > 2 else math.nan
        out[str(shift)] = None if corr is None or math.isnan(corr) else round(float(corr), 6)
    return out


def compare_frames(symbol: str, frames: dict[str, tuple[pd.DataFrame, pd.DataFrame | None]],
                   tolerance_pct: float = 1.0) -> CompareResult:
    """Compare in-memory series of one symbol (dict order = source order; first is the reference)."""
    sources = list(frames)
    if len(sources) < 2:
        raise ValueError(f"{symbol}: compare needs at least two sources with data, got {sources}")
    df = _aligned(frames)
    first = sources[0]
    rows: dict[tuple[Any, str], dict[str, Any]] = {}
    explained, close_devs = [], []
    for other in sources[1:]:
        vf = volume_factor(df, first, other)
        if vf is not None:
            explained.append({"field": "volume", "source": other, "factor": round(vf, 6),
                              "detail": f"{other} volume = {vf:.4g} x {first} volume on most dates"})
        for fld in (*LEVEL_FIELDS, "return", "volume"):
            dev = _deviation(df, fld, first, other, (vf or 1.0) if fld == "volume" else 1.0).dropna()
            if fld == "close":
                close_devs.extend(dev.abs().tolist())
            for date, value in dev[dev.abs() > tolerance_pct].items():
                _add_mismatch(rows, df, date, fld, sources, float(value))
    mismatches = sorted(rows.values(), key=lambda m: (m["date"], m["field"]))
    shifts = _shift_correlations(df, first, sources[1])
    best = max((s for s in shifts if shifts[s] is not None), key=lambda s: (shifts[s], s == "0"), default="0")
    counts = {f: sum(1 for m in mismatches if m["field"] == f) for f in (*LEVEL_FIELDS, "return", "volume")}
    return CompareResult(
        symbol=symbol, sources=sources, tolerance_pct=tolerance_pct, dates_compared=len(df),
        missing=_missing(frames), mismatches=mismatches,
        max_deviation_pct=_stat(close_devs, max), median_deviation_pct=_stat(close_devs, _median),
        return_correlation=shifts["0"], best_shift_days=int(best), shift_correlations=shifts,
        explained=explained, mismatch_counts=counts,
    )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _stat(values: list[float], fn: Any) -> float | None:
    return round(float(fn(values)), 6) if values else None


def _add_mismatch(rows: dict, df: pd.DataFrame, date: Any, fld: str, sources: list[str], value: float) -> None:
    key = (date, fld)
    if key in rows:
        if abs(value) > abs(rows[key]["deviation_pct"]):
            rows[key]["deviation_pct"] = round(value, 6)
        return
    values = {src: _plain(df.at[date, f"{fld}:{src}"]) for src in sources}
    rows[key] = {"date": date.date().isoformat(), "field": fld, "values": values, "deviation_pct": round(value, 6)}


def _plain(value: Any) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def compare(layout: DataLayout, symbol: str, sources: list[str], tolerance_pct: float = 1.0,
            plot: str | None = None) -> CompareResult:
    """Compare ``symbol`` across ``sources`` in the lake; optionally write a PNG to ``plot``."""
    from cxq_data.errors import CxqError
    from cxq_data.quality.loader import load_frames

    loaded = load_frames(layout, symbol, sources)
    absent = [s for s in sources if s not in loaded]
    if absent:
        raise CxqError(f"{symbol}: no daily data from source(s) {', '.join(absent)} in {layout.root}")
    frames = {s: loaded[s] for s in sources}
    result = compare_frames(symbol, frames, tolerance_pct)
    if plot:
        from cxq_data.quality.plots import plot_compare

        plot_compare(result, frames, plot)
    return result
