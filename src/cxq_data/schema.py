"""Explicit Arrow schemas: never inferred from pandas, so files do not drift with library versions."""

from __future__ import annotations

import pyarrow as pa

# Columns stored in a processed partition file. ``symbol``, ``source`` and ``year`` are partition
# keys and come from the path (symbol=X/source=Y/year=Z), never from the file.
PARTITION_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),  # as traded (unadjusted) where the source allows it
        pa.field("adjusted_close", pa.float64()),  # split + dividend adjusted, null if the source has none
        pa.field("volume", pa.int64()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),  # fetched_at of the raw file
    ]
)

# The canonical daily schema as the views expose it.
DAILY_SCHEMA = pa.schema(
    [pa.field("symbol", pa.string(), nullable=False), pa.field("source", pa.string(), nullable=False)]
    + list(PARTITION_SCHEMA)
)

# Serving files: one per (source, year), symbol as a sorted column; source/year from the path.
SERVING_SCHEMA = pa.schema([pa.field("symbol", pa.string(), nullable=False)] + list(PARTITION_SCHEMA))

ACTIONS_SCHEMA = pa.schema(
    [
        pa.field("date", pa.date32(), nullable=False),
        pa.field("dividend", pa.float64()),  # cash per share on the ex-date, as traded
        pa.field("split_ratio", pa.float64()),  # new shares per old share (2.0 = 2-for-1)
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

INTRADAY_SCHEMA = pa.schema(
    [
        pa.field("ts", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("open", pa.float64()),
        pa.field("high", pa.float64()),
        pa.field("low", pa.float64()),
        pa.field("close", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("ingested_at", pa.timestamp("us", tz="UTC"), nullable=False),
    ]
)

PARQUET_WRITE_OPTIONS = {"compression": "zstd", "compression_level": 3, "use_dictionary": True, "write_statistics": True}
