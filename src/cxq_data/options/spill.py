"""Bucketed spill file: the external-sort half of the converter's global row order.

Pass 1 appends each chunk of records *sorted by symbol code* (stable, so file order is kept per
symbol; codes are already in output order) to an anonymous temp file and remembers how many rows
of each bucket (``SYMBOLS_PER_BUCKET`` consecutive codes) each chunk holds. Pass 2 reads
consecutive buckets back - one contiguous slice per chunk - in groups of about ``chunk_records``
rows. One cbbo-1m symbol has at most 1,440 records per day, so a bucket is at most ~92k rows and
memory stays flat.

The file is private, so each record's symbol code travels in its 8 unused ``_reserved3`` bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

SYMBOLS_PER_BUCKET = 64
RECORD_BYTES = 80
BYTES_DTYPE = np.dtype(f"S{RECORD_BYTES}")  # a record as an opaque byte string: fancy indexing ~30x faster
CODE_FIELD = "_reserved3"  # 8 unused bytes in every CBBO record (DBN v1-v3)


def spill_dtype(record_dtype: np.dtype) -> np.dtype:
    """The CBBO dtype with ``_reserved3`` read as u8 (where the symbol code is parked)."""
    fields = [(name, "<u8" if name == CODE_FIELD else record_dtype.fields[name][0]) for name in record_dtype.names]
    spill = np.dtype(fields)
    if spill.itemsize != RECORD_BYTES or record_dtype.itemsize != RECORD_BYTES:
        raise AssertionError(f"CBBO record is {record_dtype.itemsize} bytes, expected {RECORD_BYTES}")
    return spill


def set_codes(records: np.ndarray, codes: np.ndarray) -> None:
    records.view(spill_dtype(records.dtype))[CODE_FIELD] = codes


def get_codes(records: np.ndarray) -> np.ndarray:
    return records.view(spill_dtype(records.dtype))[CODE_FIELD]


@dataclass
class BucketSpill:
    file: BinaryIO
    n_symbols: int
    chunk_offsets: list[int] = field(default_factory=list)
    bucket_counts: list[np.ndarray] = field(default_factory=list)
    _end: int = 0  # bytes appended so far (the file position once pending writes are done)

    @property
    def n_buckets(self) -> int:
        return max(1, -(-self.n_symbols // SYMBOLS_PER_BUCKET))

    def add(self, records: np.ndarray, codes: np.ndarray, write: Callable[[Any], Any] | None = None) -> None:
        """Append one chunk, stably partitioned by bucket (file order kept inside a bucket).

        ``write`` (default ``file.write``) lets the caller hand the actual write to a helper thread.
        """
        buckets = (codes // SYMBOLS_PER_BUCKET).astype(np.uint16 if self.n_buckets < 2**16 else np.int64)
        # Sorting by code (same radix-sort cost as by bucket) leaves every symbol's rows contiguous in
        # the spill, so pass 2 gathers runs instead of scattered rows (cache-friendly, ~2x faster).
        keys = codes.astype(np.uint16) if self.n_symbols < 2**16 else buckets
        order = np.argsort(keys, kind="stable")  # radix sort for u16
        if not records.flags.writeable:
            records = records.copy()
        set_codes(records, codes)  # before the gather: the codes then move with their records
        partitioned = records.view(BYTES_DTYPE)[order].view(records.dtype)
        self.chunk_offsets.append(self._end)
        self.bucket_counts.append(np.bincount(buckets, minlength=self.n_buckets))
        self._end += partitioned.nbytes
        (write or self.file.write)(partitioned)

    def groups(self, chunk_records: int) -> list[tuple[int, int]]:
        """Consecutive bucket ranges [b0, b1) of about ``chunk_records`` rows (>= one bucket each)."""
        if not self.bucket_counts:
            return []
        totals = np.sum(self.bucket_counts, axis=0).tolist()
        out, start, acc = [], 0, 0
        for b, count in enumerate(totals):
            acc += count
            if acc >= chunk_records:
                out.append((start, b + 1))
                start, acc = b + 1, 0
        if acc:
            out.append((start, len(totals)))
        return out

    def read(self, b0: int, b1: int, dtype: np.dtype) -> np.ndarray:
        """Buckets [b0, b1) from every chunk, in chunk (= file) order."""
        slices = []
        for offset, counts in zip(self.chunk_offsets, self.bucket_counts):
            before, inside = int(counts[:b0].sum()), int(counts[b0:b1].sum())
            if inside:
                slices.append((offset + before * RECORD_BYTES, inside * RECORD_BYTES))
        out = bytearray(sum(length for _, length in slices))
        view, pos = memoryview(out), 0
        for start, length in slices:
            self.file.seek(start)
            got = self.file.readinto(view[pos : pos + length])
            if got != length:
                raise OSError(f"spill file short read ({got} of {length} bytes)")
            pos += length
        self.file.seek(0, 2)
        return np.frombuffer(out, dtype=dtype)
