"""The Parquet writer of converted cbbo records: settings, background encoding, late metadata.

Parquet encoding (pyarrow, GIL released) runs on one helper thread while the caller builds the
next row group. Key-value metadata may be given up front or only at the end (``finish``): a
one-pass conversion learns the row count and time range only after the last record, so it
replaces the ``ARROW:schema`` entry (the serialized schema, which is where readers take the
schema metadata from) with one that carries the final ``cxq.*`` keys.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cxq_data.options.cbbo_table import CBBO_SCHEMA, SORT_COLUMNS
from cxq_data.options.prefetch import BackgroundCalls

# Per-column settings, measured column by column on the standard day (CPU-s to encode, MB).
# Dictionary pages pay off for repeated values (minute-aligned ts_recv, penny quotes, sizes): not for
# the nanosecond trade times in ts_event (0.10 s / 6.6 MB vs 0.04 s / 4.0 MB plain), nor for trade
# prices, publisher, flags, price bands or instrument ids (same size or smaller, cheaper plain).
DICTIONARY_COLUMNS = ("ts_recv", "symbol", "root", "expiration", "right", "strike", "bid_px", "ask_px",
                      "bid_sz", "ask_sz", "size")
# Statistics only where a reader filters and they can prune. A file sorted as a whole: time and the
# contract keys (-0.08 CPU-s per day vs all columns). Row groups that are time slices (one-pass sort)
# each hold nearly every contract of the day, so min/max of the contract keys would span the whole
# range in every row group and prune nothing: time only (another -0.05 CPU-s, ~5 % of the conversion).
STATISTICS_COLUMNS = ("ts_recv", "ts_event", "symbol", "root", "expiration", "right", "strike", "instrument_id")
TIME_STATISTICS_COLUMNS = ("ts_recv", "ts_event")
_WRITE_BUFFER = 1 << 20  # the writer emits each page and header separately (~5k syscalls/day unbuffered)
_ARROW_SCHEMA_KEY = "ARROW:schema"



class CbboParquetWriter:
    """Row groups go to a helper thread; call :meth:`finish` once with the final metadata."""

    def __init__(self, writer: pq.ParquetWriter, background: BackgroundCalls,
                 progress: Callable[[int], None] | None) -> None:
        self._writer = writer
        self._background = background
        self._progress = progress

    def _write(self, table: pa.Table) -> None:
        self._writer.write_table(table, row_group_size=table.num_rows)
        if self._progress is not None:
            self._progress(table.num_rows)

    def submit(self, table: pa.Table) -> None:
        """Queue ``table`` as one row group (blocks while the previous one is still encoding)."""
        self._background.submit(self._write, table)

    def finish(self, metadata: Mapping[str, str]) -> None:
        """Set the file's key-value metadata after the last row group (one-pass conversions)."""
        self._background.drain()
        serialized = CBBO_SCHEMA.with_metadata(dict(metadata)).serialize().to_pybytes()
        self._writer.add_key_value_metadata({**metadata, _ARROW_SCHEMA_KEY: base64.b64encode(serialized).decode()})


@contextlib.contextmanager
def open_cbbo_writer(path: Path, metadata: Mapping[str, str] | None = None, *,
                     statistics: Sequence[str] = STATISTICS_COLUMNS,
                     progress: Callable[[int], None] | None = None) -> Iterator[CbboParquetWriter]:
    """A zstd Parquet writer of ``CBBO_SCHEMA`` at ``path``, declaring the converter's sort columns;
    min/max statistics for the ``statistics`` columns."""
    schema = CBBO_SCHEMA.with_metadata(dict(metadata)) if metadata else CBBO_SCHEMA
    # declared so that engines which understand Parquet sorting_columns can use the order
    sorting = [pq.SortingColumn(schema.get_field_index(name), nulls_first=False) for name in SORT_COLUMNS]
    with pa.output_stream(path, buffer_size=_WRITE_BUFFER) as sink, \
            pq.ParquetWriter(sink, schema, compression="zstd", use_dictionary=list(DICTIONARY_COLUMNS),
                             write_statistics=list(statistics), sorting_columns=sorting) as writer, \
            BackgroundCalls(depth=1) as background:
        yield CbboParquetWriter(writer, background, progress)
