"""The two pandas frames every check works on, and how to make them from a CSV.

series : date, open, high, low, close, adjusted_close, volume  (one row per bar, sorted by date)
actions: date, dividend, split_ratio                          (split_ratio = new shares per old share)

``date`` is a naive ``datetime64`` (the trading date; any time or UTC offset is dropped, so
``2022-06-06 00:00:00+01:00`` is the trading date 2022-06-06).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

SERIES_COLUMNS = ["date", "open", "high", "low", "close", "adjusted_close", "volume"]
ACTION_COLUMNS = ["date", "dividend", "split_ratio"]
PRICE_COLUMNS = ["open", "high", "low", "close"]


def trading_dates(values: pd.Series) -> pd.Series:
    """Dates as naive midnight timestamps, keeping the local calendar date of offset-aware text."""
    import pandas as pd

    text = values.astype(str).str.slice(0, 10)
    return pd.to_datetime(text, format="%Y-%m-%d")


def prepare_series(frame: pd.DataFrame) -> pd.DataFrame:
    """Copy with the standard columns (missing ones as null), dates normalised, sorted by date."""
    import pandas as pd

    out = pd.DataFrame({c: frame[c] if c in frame.columns else None for c in SERIES_COLUMNS})
    out["date"] = trading_dates(out["date"])
    for col in SERIES_COLUMNS[1:]:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype("float64")
    return out.sort_values("date", kind="stable").reset_index(drop=True)


def prepare_actions(frame: pd.DataFrame | None) -> pd.DataFrame:
    """One row per date: dividends summed, split ratios multiplied; rows without an event dropped."""
    import pandas as pd

    if frame is None or len(frame) == 0:
        return pd.DataFrame({"date": pd.Series([], dtype="datetime64[ns]"),
                             "dividend": pd.Series([], dtype="float64"),
                             "split_ratio": pd.Series([], dtype="float64")})
    out = pd.DataFrame({c: frame[c] if c in frame.columns else None for c in ACTION_COLUMNS})
    out["date"] = trading_dates(out["date"])
    out["dividend"] = pd.to_numeric(out["dividend"], errors="coerce").fillna(0.0).astype("float64")
    split = pd.to_numeric(out["split_ratio"], errors="coerce").astype("float64")
    out["split_ratio"] = split.where((split > 0) & (split != 1.0), 1.0)
    out = out.groupby("date", as_index=False).agg(dividend=("dividend", "sum"), split_ratio=("split_ratio", "prod"))
    keep = (out["dividend"] > 0) | (out["split_ratio"] != 1.0)
    return out[keep].sort_values("date").reset_index(drop=True)


def frames_from_csv(path: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read a Yahoo-style CSV (Date, Open, High, Low, Close, [Adj Close], Volume, [Dividends],
    [Stock Splits]; any column order and case, rows in any order) into (series, actions).

    Values are taken as they are in the file (no un-adjusting): for calibration and the injector.
    The ingest path (``ingest import``) is the way to bring such a file into the lake.
    """
    import pandas as pd

    raw = pd.read_csv(path)
    cols = {c.strip().lower().replace(" ", "_"): c for c in raw.columns}
    rename = {"adj_close": "adjusted_close", "dividends": "dividend", "stock_splits": "split_ratio"}
    frame = pd.DataFrame({rename.get(k, k): raw[v] for k, v in cols.items()})
    series = prepare_series(frame)
    actions = prepare_actions(frame[[c for c in ACTION_COLUMNS if c in frame.columns]]
                              if "date" in frame.columns else None)
    return series, actions
