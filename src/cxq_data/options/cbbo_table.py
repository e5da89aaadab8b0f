"""The Parquet schema of converted OPRA cbbo records and the numpy -> Arrow conversion.

The schema is explicit (it never drifts with pandas or databento versions). ``underlying`` and
``date`` are not columns: they are the hive partition keys of the S3 layout. ``rtype`` and ``side``
are dropped (constant for OPRA cbbo). Sentinels become nulls: ``UNDEF_PRICE`` prices and
``UNDEF_TIMESTAMP`` times.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from cxq_data.options.occ import OccColumns

UNDEF_PRICE = np.int64(2**63 - 1)
UNDEF_TIMESTAMP = np.uint64(2**64 - 1)
FIXED_PRICE_SCALE = 1e9
CBBO_RTYPES = {"cbbo-1m": 193, "cbbo-1s": 192}
SORT_COLUMNS = ("expiration", "strike", "symbol", "ts_recv")  # non-OCC symbols (null expiration) last
SORT_ORDER = ",".join(SORT_COLUMNS)

TS = pa.timestamp("ns", tz="UTC")
CBBO_SCHEMA = pa.schema(
    [
        pa.field("ts_recv", TS, nullable=False),
        pa.field("ts_event", TS),
        pa.field("symbol", pa.dictionary(pa.int32(), pa.string()), nullable=False),
        pa.field("root", pa.string()),
        pa.field("expiration", pa.date32()),
        pa.field("right", pa.string()),
        pa.field("strike", pa.float64()),
        pa.field("bid_px", pa.float64()),
        pa.field("ask_px", pa.float64()),
        pa.field("bid_sz", pa.uint32(), nullable=False),
        pa.field("ask_sz", pa.uint32(), nullable=False),
        pa.field("bid_pb", pa.uint16(), nullable=False),
        pa.field("ask_pb", pa.uint16(), nullable=False),
        pa.field("price", pa.float64()),
        pa.field("size", pa.uint32(), nullable=False),
        pa.field("flags", pa.uint8(), nullable=False),
        pa.field("publisher_id", pa.uint16(), nullable=False),
        pa.field("instrument_id", pa.uint32(), nullable=False),
    ]
)
COLUMNS = CBBO_SCHEMA.names


def numpy_to_arrow(values: np.ndarray, arrow_type: pa.DataType, null_mask: np.ndarray | None = None) -> pa.Array:
    """Zero-copy numpy -> Arrow for fixed-width types.

    ``pa.array`` is avoided on purpose: its first call imports pandas (~0.8 s, ~60 MB RSS), which a
    streaming converter does not need.
    """
    values = np.ascontiguousarray(values)
    validity = None
    null_count = 0
    if null_mask is not None and null_mask.any():
        validity = pa.py_buffer(np.packbits(~null_mask, bitorder="little"))
        null_count = int(null_mask.sum())
    return pa.Array.from_buffers(arrow_type, len(values), [validity, pa.py_buffer(values)], null_count=null_count)


def strings_to_arrow(items: Sequence[str | None]) -> pa.Array:
    """A string array from Python strings (None -> null) built from raw offset/data buffers."""
    encoded = [b"" if item is None else item.encode("utf-8") for item in items]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    nulls = np.array([item is None for item in items], dtype=bool)
    validity = pa.py_buffer(np.packbits(~nulls, bitorder="little")) if nulls.any() else None
    return pa.Array.from_buffers(pa.string(), len(encoded), [validity, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))],
                                 null_count=int(nulls.sum()))


@dataclass(frozen=True)
class SymbolCatalog:
    """Per-symbol columns, indexed by the symbol code the SymbolMap resolves to."""

    symbol: pa.Array  # string
    root: pa.Array  # string (null where not OCC)
    right: pa.Array  # string
    expiration: pa.Array  # date32
    strike: pa.Array  # float64

    @classmethod
    def build(cls, symbols: Sequence[str], occ: OccColumns) -> SymbolCatalog:
        invalid = ~occ.valid
        return cls(
            symbol=strings_to_arrow(list(symbols)),
            root=strings_to_arrow(occ.root),
            right=strings_to_arrow(occ.right),
            expiration=numpy_to_arrow(occ.expiration_days.astype(np.int32), pa.date32(), invalid),
            strike=numpy_to_arrow(occ.strike, pa.float64(), invalid),
        )


def _price(raw: np.ndarray) -> pa.Array:
    return numpy_to_arrow(raw.astype(np.float64) / FIXED_PRICE_SCALE, pa.float64(), raw == UNDEF_PRICE)


def _timestamp(raw: np.ndarray) -> pa.Array:
    return numpy_to_arrow(np.ascontiguousarray(raw).view(np.int64), TS, raw == UNDEF_TIMESTAMP)


def _plain(raw: np.ndarray, arrow_type: pa.DataType) -> pa.Array:
    return numpy_to_arrow(raw, arrow_type)


def _symbol_dictionary(codes: np.ndarray, catalog: SymbolCatalog) -> pa.Array:
    """Dictionary column with only the symbols this row group uses (smaller pages, exact stats)."""
    used, local = np.unique(codes, return_inverse=True)
    dictionary = catalog.symbol.take(numpy_to_arrow(used.astype(np.int64), pa.int64()))
    return pa.DictionaryArray.from_arrays(numpy_to_arrow(local.astype(np.int32), pa.int32()), dictionary)


def records_to_table(records: np.ndarray, codes: np.ndarray, catalog: SymbolCatalog) -> pa.Table:
    """Convert CBBO records (``CBBOMsg._dtypes``) plus their symbol codes to a CBBO_SCHEMA table."""
    take = numpy_to_arrow(codes.astype(np.int64), pa.int64())
    columns = [
        _timestamp(records["ts_recv"]),
        _timestamp(records["ts_event"]),
        _symbol_dictionary(codes, catalog),
        catalog.root.take(take),
        catalog.expiration.take(take),
        catalog.right.take(take),
        catalog.strike.take(take),
        _price(records["bid_px_00"]),
        _price(records["ask_px_00"]),
        _plain(records["bid_sz_00"], pa.uint32()),
        _plain(records["ask_sz_00"], pa.uint32()),
        _plain(records["bid_pb_00"], pa.uint16()),
        _plain(records["ask_pb_00"], pa.uint16()),
        _price(records["price"]),
        _plain(records["size"], pa.uint32()),
        _plain(records["flags"], pa.uint8()),
        _plain(records["publisher_id"], pa.uint16()),
        _plain(records["instrument_id"], pa.uint32()),
    ]
    return pa.Table.from_arrays(columns, schema=CBBO_SCHEMA)
