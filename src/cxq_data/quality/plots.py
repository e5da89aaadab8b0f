"""PNG charts for cross-validation (matplotlib, Agg backend, imported only here)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxq_data.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from cxq_data.quality.compare import CompareResult
    from cxq_data.quality.matrix import PairAgreement


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})  # no version stamp: same bytes
    _pyplot().close(fig)
    return atomic_write_bytes(Path(path), buf.getvalue(), overwrite=True)


def plot_compare(result: CompareResult, frames: dict[str, tuple[Any, Any]], path: str | Path) -> Path:
    """Top: each source's close; bottom: close deviation vs the first source; mismatches marked."""
    import pandas as pd

    from cxq_data.quality.frames import prepare_series

    plt = _pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, height_ratios=[2, 1])
    first = result.sources[0]
    base = prepare_series(frames[first][0]).drop_duplicates("date").set_index("date")["close"]
    lows, highs = [], []
    for source in result.sources:
        s = prepare_series(frames[source][0]).drop_duplicates("date").set_index("date")["close"]
        top.plot(s.index, s.values, label=source, linewidth=1.1)
        positive = s[s > 0]
        if len(positive):
            lows.append(positive.min())
            highs.append(positive.max())
        if source != first:
            dev = (s / base - 1.0).dropna() * 100.0
            bottom.plot(dev.index, dev.values, label=f"{source} vs {first}", linewidth=1.0)
    marks = [m for m in result.mismatches if m["field"] == "close"]
    if marks:
        dates = pd.to_datetime([m["date"] for m in marks])
        bottom.scatter(dates, [m["deviation_pct"] for m in marks], color="red", s=14, zorder=3,
                       label=f"close mismatch > {result.tolerance_pct:g}%")
    other = [m for m in result.mismatches if m["field"] != "close"]
    for m in other[:200]:
        top.axvline(pd.Timestamp(m["date"]), color="red", alpha=0.15, linewidth=0.8)
    top.set_title(f"{result.symbol}: {' vs '.join(result.sources)} — {result.dates_compared} dates, "
                  f"{len(result.mismatches)} mismatches, return corr {result.return_correlation}")
    # A 100x unit error or an unadjusted split flattens a linear axis: switch to log when the
    # levels span more than 20x, so the normal history stays readable next to the defect.
    log_scale = bool(lows) and max(highs) / min(lows) > 20
    if log_scale:
        top.set_yscale("log")
        bottom.set_yscale("symlog", linthresh=max(result.tolerance_pct, 1.0))
    top.set_ylabel("close (log scale)" if log_scale else "close")
    top.legend(loc="best")
    bottom.axhline(result.tolerance_pct, color="grey", linestyle="--", linewidth=0.8)
    bottom.axhline(-result.tolerance_pct, color="grey", linestyle="--", linewidth=0.8)
    bottom.set_ylabel("close deviation %")
    bottom.legend(loc="best")
    fig.autofmt_xdate()
    fig.tight_layout()
    return _save(fig, path)


def plot_matrix(rows: list[PairAgreement], path: str | Path) -> Path:
    """Heat map: symbols x source pairs, colour = return agreement rate (annotated)."""
    import numpy as np

    plt = _pyplot()
    symbols = list(dict.fromkeys(r.symbol for r in rows))
    pairs = list(dict.fromkeys(f"{r.source_a} vs {r.source_b}" for r in rows))
    grid = np.full((len(symbols), len(pairs)), np.nan)
    for r in rows:
        if r.agreement_rate is not None:
            grid[symbols.index(r.symbol), pairs.index(f"{r.source_a} vs {r.source_b}")] = r.agreement_rate
    fig, ax = plt.subplots(figsize=(2.2 + 1.8 * len(pairs), 1.2 + 0.5 * len(symbols)))
    image = ax.imshow(grid, vmin=0.0, vmax=1.0, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(pairs)), pairs)
    ax.set_yticks(range(len(symbols)), symbols)
    for i in range(len(symbols)):
        for j in range(len(pairs)):
            text = "n/a" if np.isnan(grid[i, j]) else f"{grid[i, j]:.1%}"
            ax.text(j, i, text, ha="center", va="center", fontsize=9)
    fig.colorbar(image, ax=ax, label="return agreement rate")
    ax.set_title("Cross-source agreement")
    fig.tight_layout()
    return _save(fig, path)
