"""Read what the checks need from the lake: the ``daily``/``actions`` views and the raw fetches.

Everything the quality package reads from disk goes through these functions, so the checks stay
pure functions over frames.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cxq_data.quality.frames import prepare_actions, prepare_series

if TYPE_CHECKING:
    import pandas as pd

    from cxq_data.paths import DataLayout
    from cxq_data.quality.history import Fetch

_DAILY_COLS = "source, date, open, high, low, close, adjusted_close, volume"


def _query(layout: DataLayout, sql: str, params: list) -> pd.DataFrame:
    """Run SQL against the DuckDB views (``daily``, ``actions``, ``daily_adjusted``)."""
    from cxq_data.db import connect

    con = connect(layout, read_only=True)
    try:
        return con.execute(sql, params).df()
    finally:
        con.close()


def _source_filter(sources: list[str] | None) -> tuple[str, list]:
    if not sources:
        return "", []
    return f" AND source IN ({', '.join('?' for _ in sources)})", list(sources)


def load_frames(layout: DataLayout, symbol: str,
                sources: list[str] | None = None) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """{source: (series, actions)} for one symbol, sources in name order."""
    where, params = _source_filter(sources)
    bars = _query(layout, f"SELECT {_DAILY_COLS} FROM daily WHERE symbol = ?{where} ORDER BY source, date",
                  [symbol, *params])
    acts = _query(layout, f"SELECT source, date, dividend, split_ratio FROM actions WHERE symbol = ?{where}",
                  [symbol, *params])
    out = {}
    for source, rows in bars.groupby("source", sort=True):
        out[str(source)] = (prepare_series(rows), prepare_actions(acts[acts["source"] == source]))
    return out


def load_adjusted(layout: DataLayout, symbol: str, source: str) -> pd.DataFrame:
    """Rows of the ``daily_adjusted`` view for one symbol/source, by date."""
    return _query(layout, "SELECT * FROM daily_adjusted WHERE symbol = ? AND source = ? ORDER BY date",
                  [symbol, source])


def load_fetches(layout: DataLayout, symbol: str, source: str) -> list[Fetch]:
    """Every raw daily fetch of symbol/source normalized on its own, oldest first.

    The row order of the raw file is kept (with duplicates) when the normalizer keeps it, so a file
    with two rows for one date is visible to ``duplicate_date``.
    """
    from cxq_data.normalize import normalize_record
    from cxq_data.quality.history import Fetch
    from cxq_data.raw import format_ts, list_raw

    fetches = []
    for record in list_raw(layout, source, symbol, "daily"):
        bars = normalize_record(record, keep_duplicates=True).bars.to_pandas()
        label = f"{format_ts(record.fetched_at)} ({record.path.name})"
        fetches.append(Fetch(record.fetched_at, label, prepare_series(bars)))
    return fetches
