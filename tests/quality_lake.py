"""Build a small real lake for the quality tests: raw CSV files -> lake -> serving -> DuckDB views.

Uses the project's own modules end to end (raw.write_raw, lake.process_symbol, db.refresh_serving);
the CSV format is the generic importer's (``generic_csv``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd

from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse, write_raw

FIXTURES = Path(__file__).parent / "data" / "yfinance_defects"
T0 = dt.datetime(2024, 1, 2, tzinfo=dt.UTC)


def frame_to_csv(series: pd.DataFrame, actions: pd.DataFrame | None = None) -> bytes:
    out = pd.DataFrame({"Date": pd.to_datetime(series["date"]).dt.strftime("%Y-%m-%d"),
                        "Open": series["open"], "High": series["high"], "Low": series["low"],
                        "Close": series["close"], "Adj Close": series["adjusted_close"],
                        "Volume": series["volume"].round().astype("int64")})
    out["Dividends"], out["Stock Splits"] = 0.0, 0.0
    if actions is not None:
        for _, a in actions.iterrows():
            hit = out["Date"] == pd.Timestamp(a["date"]).strftime("%Y-%m-%d")
            out.loc[hit, "Dividends"], out.loc[hit, "Stock Splits"] = a["dividend"], (
                0.0 if a["split_ratio"] == 1.0 else a["split_ratio"])
    return out.to_csv(index=False).encode()


def add_raw(layout: DataLayout, source: str, symbol: str, body: bytes, fetched_at: dt.datetime = T0) -> None:
    write_raw(layout, RawResponse(source=source, symbol=symbol, body=body, ext="csv",
                                  extra={"format": "generic_csv"}, fetched_at=fetched_at))


def build(layout: DataLayout, pairs: list[tuple[str, str]]) -> None:
    """Process every (source, symbol) and publish serving files + views."""
    from cxq_data.db import refresh_serving
    from cxq_data.lake import process_symbol

    for source, symbol in pairs:
        process_symbol(layout, source, symbol)
    refresh_serving(layout, grace_seconds=0)
