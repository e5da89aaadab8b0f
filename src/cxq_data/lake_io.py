"""Byte-level helpers of the lake and serving writers: deterministic Parquet bytes, write-if-changed.

Parquet is serialized in memory first so that the bytes can be hashed and compared with what is on
disk: an unchanged partition is not rewritten (its mtime stays, so Snakemake and the serving layer
see no change), and a serving file is named after the hash of its content.

Durability: a single write is atomic and durable (temp + fsync + rename + fsync of the folder).
A run that writes thousands of partitions passes ``durable=False`` (temp + rename, no fsync:
~7 ms saved per file here) and calls :func:`cxq_data.atomic.sync_filesystem` before it writes
anything that declares those files final (an index, a manifest). A crash before the barrier can
leave a partition whose bytes are lost, but never one that an index or manifest already vouches for.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from cxq_data.atomic import TEMP_PREFIX, TEMP_SUFFIX, atomic_write_bytes, dumps_json
from cxq_data.schema import PARQUET_WRITE_OPTIONS

SERVING_ROW_GROUP_ROWS = 122_880  # DuckDB's row-group size: one group per scan task (lake_perf.md)
# Per-symbol partitions hold ~250 rows and a lake holds ~200,000 of them, so per-file encoder overhead
# is most of the build's CPU. A dictionary page costs more than it saves there (10.4 KB instead of
# 12.1 KB per file, 0.43 ms instead of 0.63 ms to encode). Min/max statistics are kept for the key
# columns only: a partition is one row group, so price statistics could never prune anything. No
# embedded Arrow schema: the Parquet types alone read back as exactly PARTITION_SCHEMA (tested).
# Together ~0.30 ms instead of 0.34 ms per partition (~8 s of CPU for a 210,000-file build).
# zstd level -1 (a fast level) instead of 3: ~45 us less per partition (0.24 ms instead of 0.28),
# ~13 % more bytes (10.5 KB instead of 9.3 KB), and the same 12 KB on a 4 KB-block disk. The serving
# files, which queries read, keep level 3.
PARTITION_WRITE_OPTIONS = {**PARQUET_WRITE_OPTIONS, "compression_level": -1, "use_dictionary": False,
                           "write_statistics": ["date", "ingested_at"], "store_schema": False}
# Part of every content hash: a change of writer options or pyarrow must re-encode, not skip.
_WRITER_TAG = f"pyarrow {pa.__version__} {sorted(PARTITION_WRITE_OPTIONS.items())}".encode()


def parquet_bytes(table: pa.Table, *, row_group_size: int | None = None,
                  options: dict[str, Any] | None = None) -> bytes:
    """Serialize ``table`` with the project's fixed writer options: same table -> same bytes."""
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, row_group_size=row_group_size, **(options or PARQUET_WRITE_OPTIONS))
    return sink.getvalue().to_pybytes()


def partition_bytes(table: pa.Table) -> bytes:
    """Bytes of a processed partition file (small: no dictionary encoding)."""
    return parquet_bytes(table, options=PARTITION_WRITE_OPTIONS)


def content_hash(table: pa.Table) -> str:
    """sha256 of a table's Arrow IPC stream plus the writer tag (~15 us for a partition).

    Equal hashes mean equal content and schema, hence equal Parquet bytes, so an unchanged partition
    is recognised without encoding it. Unequal hashes for equal content (e.g. a validity bitmap that
    is present in one table and absent in the other) only cost a re-encode that then finds the same
    bytes on disk.
    """
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    digest = hashlib.sha256(_WRITER_TAG)
    digest.update(sink.getvalue())
    return digest.hexdigest()


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_parquet_bytes(data: bytes) -> pa.Table:
    return read_parquet_source(pa.BufferReader(data))


def read_parquet_source(source: Any) -> pa.Table:
    """Read one whole Parquet file (path or buffer); 3x cheaper than ``pq.read_table`` for small files
    (no dataset discovery) and single-threaded, so callers parallelise across files instead."""
    return pq.ParquetFile(source).read(use_threads=False)


def write_if_changed(path: Path, data: bytes, *, durable: bool = True) -> bool:
    """Atomically write ``data`` unless ``path`` already holds exactly these bytes; True if written."""
    try:
        if os.stat(path).st_size == len(data) and path.read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    if durable:
        atomic_write_bytes(path, data)
    else:
        write_atomic_unsynced(path, data)
    return True


def write_atomic_unsynced(path: Path, data: bytes) -> None:
    """Temp file + rename (never half-visible), durable only after the caller's barrier
    (:func:`cxq_data.atomic.sync_filesystem`)."""
    folder, name = os.path.split(path)
    tmp = os.path.join(folder, f"{TEMP_PREFIX}{name}.{os.getpid()}{TEMP_SUFFIX}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        os.makedirs(folder, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def dumps_json_compact(obj: Any) -> str:
    """Canonical compact JSON (sorted keys, no indent): C-encoded, ~6x faster than the indented form,
    for machine files written by the thousand (lake indexes)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str) + "\n"


def write_json_if_changed(path: Path, obj: Any, *, durable: bool = True, compact: bool = False) -> bool:
    """Canonical JSON (same object -> same bytes), written only when the content changes."""
    text = dumps_json_compact(obj) if compact else dumps_json(obj)
    return write_if_changed(path, text.encode("utf-8"), durable=durable)


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
