"""Byte-level helpers of the lake and serving writers: deterministic Parquet bytes, write-if-changed.

Parquet is serialized in memory first so that the bytes can be hashed and compared with what is on
disk: an unchanged partition is not rewritten (its mtime stays, so Snakemake and the serving layer
see no change), and a serving file is named after the hash of its content.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cxq_data.atomic import atomic_write_bytes, dumps_json
from cxq_data.schema import PARQUET_WRITE_OPTIONS

SERVING_ROW_GROUP_ROWS = 122_880  # DuckDB's row-group size: one group per scan task (lake_perf.md)


def parquet_bytes(table: pa.Table, *, row_group_size: int | None = None) -> bytes:
    """Serialize ``table`` with the project's fixed writer options: same table -> same bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size, **PARQUET_WRITE_OPTIONS)
    return sink.getvalue().to_pybytes()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_parquet_bytes(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data))


def write_if_changed(path: Path, data: bytes) -> bool:
    """Atomically write ``data`` unless ``path`` already holds exactly these bytes; True if written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    atomic_write_bytes(path, data)
    return True


def write_json_if_changed(path: Path, obj: Any) -> bool:
    """Canonical JSON (same object -> same bytes), written only when the content changes."""
    return write_if_changed(path, dumps_json(obj).encode("utf-8"))


def remove_file_and_empty_parents(path: Path, stop: Path) -> bool:
    """Delete ``path`` and then every parent folder that became empty, up to (not including) ``stop``."""
    if not path.exists():
        return False
    path.unlink()
    folder = path.parent
    while folder != stop and stop in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or gone): stop climbing
            break
        folder = folder.parent
    return True
