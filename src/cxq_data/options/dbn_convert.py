"""Convert one Databento OPRA ``cbbo-1m`` / ``cbbo-1s`` DBN file to one sorted, zstd Parquet file.

Rows are ordered by (expiration, strike, symbol, ts_recv); ``SortScope`` says how far:

* ``row_group`` (default, one pass): stream the file (sha256 on the fly, zstd frame + checksum
  checked), validate every chunk of ``chunk_records`` records (rtype, length, ts_recv), resolve
  ``instrument_id`` per UTC day to a symbol code whose order is the output order (small hash
  table), sort the chunk with a radix sort on u16 codes, gather the columns through that
  permutation block by block and hand the row group to the Parquet writer thread. Row groups are
  time slices, each sorted, with min/max statistics on the times only (each slice holds nearly every
  contract, so contract-key statistics could not prune). The ``cxq.*`` metadata (row count, time
  range) is set at the end.
* ``file`` (two passes): the same, but each 64k-record chunk goes, sorted by code, to an anonymous
  temp file (``spill.py``); pass 2 reads consecutive symbol buckets back and writes row groups,
  so the whole file is ordered and row-group statistics prune on expiration/strike.

Measured (benchmarks/bench_options_convert.py, standard day, 2 cores): ``file`` costs ~0.4 CPU-s
more (the spill's page-cache writes and reads, a second gather) and ~0.3 s more wall (the writer
thread idles during pass 1), for a ~4-9 % smaller file; only ``row_group`` meets the 8x-faster-
than-``to_parquet`` goal, so it is the default. Peak memory is bounded in both (~250-280 MB).
zstd decoding and Parquet encoding run on helper threads (``prefetch.py``), so wall time is below
CPU time on 2 cores. The Parquet goes to a temp name and is renamed only when complete; every error
leaves nothing behind. Same input and options -> same bytes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from cxq_data.atomic import atomic_path
from cxq_data.errors import DataFormatError
from cxq_data.options.dbn_stream import DbnHeader, open_records
from cxq_data.options.prefetch import BackgroundCalls
from cxq_data.options.spill import BucketSpill, get_codes
from cxq_data.options.symbol_map import EPOCH, NS_PER_DAY, MappingError, SymbolMap, build_symbol_map

DEFAULT_CHUNK_RECORDS = 262_144
# Pass 1 partitions smaller chunks than a row group: the partitioning gather then works on 5 MB
# (cache-friendly, measured 0.09 vs 0.18 CPU-s per standard day at 262k).
SCAN_CHUNK_RECORDS = 65_536
UNDEF_TIMESTAMP = 2**64 - 1


class SortScope(str, Enum):
    """How far the row order (expiration, strike, symbol, ts_recv) reaches."""

    FILE = "file"  # the whole file: two passes through a temp spill file
    ROW_GROUP = "row_group"  # each row group (time slice of ~``chunk_records``): one pass, no spill


class SchemaMismatchError(DataFormatError):
    """The DBN file holds another schema than cbbo-1m / cbbo-1s."""


@dataclass(frozen=True)
class ConvertResult:
    """What one conversion produced (also stored as ``cxq.*`` Parquet key-value metadata)."""

    source: str
    source_sha256: str
    output: Path
    rows: int
    bytes: int
    sha256: str  # of the output Parquet
    dbn_version: int
    dataset: str
    schema: str
    ts_recv_min: int | None  # ns since epoch, UTC
    ts_recv_max: int | None
    date: dt.date | None  # the UTC day the file covers, None for a multi-day file


@dataclass
class _ScanState:
    """What pass 1 learnt about the records (the records themselves are in the spill)."""

    rows: int = 0
    ts_min: int | None = None
    ts_max: int | None = None
    days: set[int] = field(default_factory=set)
    time_ordered: bool = True  # ts_recv never decreases in the file (Databento files are ordered)
    last_ts: int | None = None

    def update(self, ts_recv: np.ndarray) -> tuple[int, int]:
        """Track range, order and count; return the first and last UTC day of this chunk."""
        lo, hi = int(ts_recv.min()), int(ts_recv.max())
        self.ts_min = lo if self.ts_min is None else min(self.ts_min, lo)
        self.ts_max = hi if self.ts_max is None else max(self.ts_max, hi)
        first_day, last_day = lo // NS_PER_DAY, hi // NS_PER_DAY
        if first_day == last_day:
            self.days.add(first_day)
        in_order = bool(np.all(ts_recv[1:] >= ts_recv[:-1])) and (self.last_ts is None or ts_recv[0] >= self.last_ts)
        self.time_ordered = self.time_ordered and in_order
        self.last_ts = int(ts_recv[-1])
        self.rows += len(ts_recv)
        return first_day, last_day


def _ns_to_iso(ns: int | None) -> str:
    if ns is None:
        return ""
    stamp = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1000)
    return stamp.strftime("%Y-%m-%dT%H:%M:%S.%f") + f"{ns % 1000:03d}Z"


def _check_schema(header: DbnHeader, name: str) -> tuple[str, int]:
    from cxq_data.options.cbbo_table import CBBO_RTYPES

    schema = str(header.metadata.schema) if header.metadata.schema is not None else "mixed"
    if schema not in CBBO_RTYPES:
        raise SchemaMismatchError(f"{name}: schema is {schema!r}, expected cbbo-1m or cbbo-1s")
    if header.metadata.ts_out:
        raise DataFormatError(f"{name}: ts_out records (with a gateway send time) are not supported")
    return schema, CBBO_RTYPES[schema]


def _validate_chunk(records: np.ndarray, rtype: int, name: str, offset: int) -> None:
    # length (u8, in 4-byte words) and rtype (u8) are the first two bytes: one u16 compare checks both
    expected = np.uint16((rtype << 8) | (records.dtype.itemsize // 4))
    header = records.view(np.dtype({"names": ["h"], "formats": ["<u2"], "offsets": [0],
                                     "itemsize": records.dtype.itemsize}))["h"]
    bad = np.flatnonzero(header != expected)
    if bad.size:
        i = int(bad[0])
        raise DataFormatError(
            f"{name}: record {offset + i} has rtype {int(records['rtype'][i])} / length "
            f"{int(records['length'][i])}, expected cbbo rtype {rtype}"
        )


def _symbol_map_or_error(header: DbnHeader, symbology: Path | Mapping[str, Any] | None,
                         name: str) -> tuple[SymbolMap, MappingError | None]:
    """The file's symbol map; a mapping problem only matters once a record needs a symbol.

    An empty day (0 records) may come without any mapping and must still convert.
    """
    try:
        return build_symbol_map(header.metadata, symbology, context=name), None
    except MappingError as exc:
        return SymbolMap.from_intervals([], "no mapping"), exc


def _scan(reader: Any, dtype: np.dtype, rtype: int, symbol_map: SymbolMap, spill: BucketSpill, *,
          name: str, chunk_records: int, mapping_error: MappingError | None) -> _ScanState:
    """Pass 1: validate, resolve symbols per UTC day, spill partitioned by symbol bucket."""
    state = _ScanState()
    with BackgroundCalls(depth=2) as background:  # spill writes overlap the next chunk's work
        _scan_chunks(reader, dtype, rtype, symbol_map, spill, state, background, name=name,
                     chunk_records=chunk_records, mapping_error=mapping_error)
    return state


def _checked_codes(records: np.ndarray, rtype: int, symbol_map: SymbolMap, state: _ScanState, *, name: str,
                   mapping_error: MappingError | None) -> np.ndarray:
    """Validate one chunk, record it in ``state`` and return each record's symbol code."""
    _validate_chunk(records, rtype, name, state.rows)
    if mapping_error is not None:
        raise mapping_error
    ts_recv = records["ts_recv"]
    first_day, last_day = state.update(ts_recv)
    if state.ts_max == UNDEF_TIMESTAMP:
        raise DataFormatError(f"{name}: a record has an undefined ts_recv (cannot place it on a day)")
    if first_day == last_day:  # the usual case: no per-record day array needed
        return symbol_map.resolve_day(records["instrument_id"], first_day, context=name)
    days = (ts_recv // np.uint64(NS_PER_DAY)).astype(np.int64)
    state.days.update(np.unique(days).tolist())
    return symbol_map.resolve(records["instrument_id"], days, context=name)


def _scan_chunks(reader: Any, dtype: np.dtype, rtype: int, symbol_map: SymbolMap, spill: BucketSpill,
                 state: _ScanState, background: BackgroundCalls, *, name: str, chunk_records: int,
                 mapping_error: MappingError | None) -> None:
    for records in reader.iter_chunks(dtype, min(chunk_records, SCAN_CHUNK_RECORDS)):
        codes = _checked_codes(records, rtype, symbol_map, state, name=name, mapping_error=mapping_error)
        spill.add(records, codes, write=lambda data: background.submit(spill.file.write, data))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _key_value_metadata(header: DbnHeader, schema: str, state: _ScanState, source_name: str,
                        source_sha256: str, scope: SortScope) -> dict[str, str]:
    from cxq_data.options.cbbo_table import SORT_ORDER

    return {
        "cxq.source_file": source_name,
        "cxq.source_sha256": source_sha256,
        "cxq.dbn_version": str(header.version),
        "cxq.dataset": str(header.metadata.dataset),
        "cxq.schema": schema,
        "cxq.rows": str(state.rows),
        "cxq.ts_recv_min": _ns_to_iso(state.ts_min),
        "cxq.ts_recv_max": _ns_to_iso(state.ts_max),
        "cxq.sort": SORT_ORDER,
        "cxq.sort_scope": scope.value,  # file: globally sorted; row_group: sorted within each row group
    }


def _covered_date(header: DbnHeader, state: _ScanState) -> dt.date | None:
    if state.days:
        return EPOCH + dt.timedelta(days=min(state.days)) if len(state.days) == 1 else None
    start, end = int(header.metadata.start), header.metadata.end
    if end is None or int(end) - start <= NS_PER_DAY:
        return EPOCH + dt.timedelta(days=start // NS_PER_DAY)
    return None


def _sort_permutation(codes: np.ndarray, ts_recv: np.ndarray, time_ordered: bool, n_symbols: int) -> np.ndarray:
    if time_ordered and n_symbols < 2**16:
        # rows are in file (= time) order already: a stable radix sort on u16 codes suffices
        return np.argsort(codes.astype(np.uint16), kind="stable")
    return np.lexsort((ts_recv, codes))


def _write_file_sorted(tmp: Path, spill: BucketSpill, state: _ScanState, dtype: np.dtype, catalog: Any,
                       metadata: dict[str, str], *, chunk_records: int,
                       progress: Callable[[int], None] | None) -> None:
    """Pass 2: one row group per bucket group; Parquet encoding overlaps the next group's sort.

    The records are not permuted whole: ``records_to_table`` gathers the columns through the
    permutation block by block (cache-friendly).
    """
    from cxq_data.options.cbbo_table import records_to_table
    from cxq_data.options.cbbo_writer import open_cbbo_writer

    with open_cbbo_writer(tmp, metadata, progress=progress) as writer:
        for b0, b1 in spill.groups(chunk_records):
            records = spill.read(b0, b1, dtype)
            codes = get_codes(records)
            order = _sort_permutation(codes, records["ts_recv"], state.time_ordered, len(catalog))
            writer.submit(records_to_table(records, codes[order].astype(np.int64), catalog, order=order))


def _convert_one_pass(tmp: Path, reader: Any, dtype: np.dtype, rtype: int, symbol_map: SymbolMap, catalog: Any,
                      finish: Callable[[_ScanState], dict[str, str]], *, name: str, chunk_records: int,
                      mapping_error: MappingError | None, progress: Callable[[int], None] | None) -> _ScanState:
    """Validate, sort each chunk by (symbol code, ts_recv) and write it as a row group, in one pass."""
    from cxq_data.options.cbbo_table import records_to_table
    from cxq_data.options.cbbo_writer import TIME_STATISTICS_COLUMNS, open_cbbo_writer

    state = _ScanState()
    with open_cbbo_writer(tmp, statistics=TIME_STATISTICS_COLUMNS, progress=progress) as writer:
        for records in reader.iter_chunks(dtype, chunk_records):
            codes = _checked_codes(records, rtype, symbol_map, state, name=name, mapping_error=mapping_error)
            in_order = state.time_ordered  # (this chunk included)
            order = _sort_permutation(codes, records["ts_recv"], in_order, len(catalog))
            writer.submit(records_to_table(records, codes[order], catalog, order=order))
        writer.finish(finish(state))
    return state


def _check_source_sha(stream: Any, expected: str | None, name: str) -> str:
    actual = stream.sha256.hexdigest()
    if expected is not None and expected.removeprefix("sha256:").lower() != actual:
        raise DataFormatError(f"{name}: sha256 is {actual}, expected {expected}")
    return actual


def convert_dbn(
    src: Path | str,
    dst: Path | str,
    *,
    symbology: Path | Mapping[str, Any] | None = None,
    source_sha256: str | None = None,
    source_name: str | None = None,
    chunk_records: int = DEFAULT_CHUNK_RECORDS,
    progress: Callable[[int], None] | None = None,
    sort: SortScope | str = SortScope.ROW_GROUP,
) -> ConvertResult:
    """Convert an OPRA cbbo DBN file (``.dbn.zst`` or plain ``.dbn``, DBN v1/v2/v3) to Parquet.

    ``source_sha256``, if given, must equal the sha256 of ``src`` (checked while reading).
    ``source_name`` is stored as ``cxq.source_file`` (default: the file name). ``progress`` is
    called with the number of rows written after each row group. ``sort``: ``row_group`` (default,
    one pass) orders each row group by (expiration, strike, symbol, ts_recv); ``file`` orders the
    whole file (two passes through a temp spill file, ~25 % slower, ~4-9 % smaller). Raises ``DataFormatError`` (subclasses:
    ``SchemaMismatchError``, ``TruncatedDbnError``, ``MappingError``) on bad input; ``dst`` is
    then untouched.
    """
    import databento_dbn

    from cxq_data.options.cbbo_table import SymbolCatalog
    from cxq_data.options.occ import parse_occ_columns

    src, dst, scope = Path(src), Path(dst), SortScope(sort)
    if chunk_records < 1:
        raise ValueError(f"chunk_records must be >= 1, got {chunk_records}")
    name = str(src)
    dtype = np.dtype(databento_dbn.CBBOMsg._dtypes)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as fh, open_records(fh, src) as (stream, reader, header):
        schema, rtype = _check_schema(header, name)
        symbol_map, mapping_error = _symbol_map_or_error(header, symbology, name)
        strict = str(header.metadata.dataset).upper().startswith("OPRA")
        occ = parse_occ_columns(symbol_map.symbols, strict=strict, context=symbol_map.origin)
        order = occ.sort_order(symbol_map.symbols)
        symbol_map = symbol_map.reorder(order)
        catalog = SymbolCatalog.build(symbol_map.symbols, occ.take(order))
        digest: list[str] = []

        def metadata(state: _ScanState) -> dict[str, str]:
            digest.append(_check_source_sha(stream, source_sha256, name))
            return _key_value_metadata(header, schema, state, source_name or src.name, digest[0], scope)

        with atomic_path(dst) as tmp:
            if scope is SortScope.ROW_GROUP:
                state = _convert_one_pass(tmp, reader, dtype, rtype, symbol_map, catalog, metadata, name=name,
                                          chunk_records=chunk_records, mapping_error=mapping_error,
                                          progress=progress)
            else:
                with tempfile.TemporaryFile(dir=dst.parent) as spill_file:
                    spill = BucketSpill(spill_file, len(symbol_map.symbols))
                    state = _scan(reader, dtype, rtype, symbol_map, spill, name=name, chunk_records=chunk_records,
                                  mapping_error=mapping_error)
                    _write_file_sorted(tmp, spill, state, dtype, catalog, metadata(state),
                                       chunk_records=chunk_records, progress=progress)
            out_sha = _file_sha256(tmp)
            out_bytes = tmp.stat().st_size
    return ConvertResult(
        source=source_name or src.name, source_sha256=digest[0], output=dst, rows=state.rows, bytes=out_bytes,
        sha256=out_sha, dbn_version=header.version, dataset=str(header.metadata.dataset), schema=schema,
        ts_recv_min=state.ts_min, ts_recv_max=state.ts_max, date=_covered_date(header, state),
    )
