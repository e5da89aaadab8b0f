"""numpy -> Arrow without ``pa.array``.

``pa.array`` checks whether its input is a pandas object, and that check imports pandas on first use:
~0.5-0.8 s and ~60 MB per process. The lake (every Snakemake process job, every CLI run) and the options
converter never need pandas, so their hot paths build arrays from raw buffers instead (zero-copy).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from cxq_data.errors import DataFormatError

_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def numpy_to_arrow(values: np.ndarray, arrow_type: pa.DataType | None = None,
                   null_mask: np.ndarray | None = None) -> pa.Array:
    """A fixed-width Arrow array over ``values`` (type from the dtype unless given; True in ``null_mask``
    = null). Not for booleans (Arrow packs them in bits)."""
    values = np.ascontiguousarray(values)
    arrow_type = arrow_type or pa.from_numpy_dtype(values.dtype)
    validity = None
    null_count = 0
    if null_mask is not None and null_mask.any():
        validity = pa.py_buffer(np.packbits(~null_mask, bitorder="little"))
        null_count = int(null_mask.sum())
    buffers = [validity, pa.py_buffer(values)]
    return pa.Array.from_buffers(arrow_type, len(values), buffers, null_count=null_count)


def repeated_string(value: str, n: int) -> pa.Array:
    """``n`` copies of ``value`` as an Arrow string array."""
    return repeated_strings([value], [n])


def repeated_strings(values: Sequence[str], counts: Sequence[int]) -> pa.Array:
    """Each of ``values`` repeated ``counts[i]`` times, in order, as one Arrow string array (the symbol
    column of many stacked partitions, built at once instead of one array per partition)."""
    encoded = [v.encode("utf-8") for v in values]
    lengths = np.repeat(np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded)),
                        np.asarray(counts, dtype=np.int64))
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    if offsets[-1] >= 2**31:
        raise ValueError(f"repeated_strings: {offsets[-1]} bytes exceed a string array")
    data = b"".join(e * int(c) for e, c in zip(encoded, counts))
    return pa.Array.from_buffers(pa.string(), len(lengths),
                                 [None, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)])


def arrow_to_int64(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The values of an integer-like column without nulls (dates as days, timestamps as ticks) as int64.

    Reads the data buffers directly: ``to_numpy`` would import pandas.
    """
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    storage = pa.int32() if pa.types.is_date32(column.type) else pa.int64()
    # date32 is stored as int32 and timestamps/int64 as int64: read their buffers as they are (a cast
    # costs ~30 us a call even when it changes nothing); other types are cast first.
    as_is = pa.types.is_date32(column.type) or pa.types.is_timestamp(column.type) or column.type == pa.int64()
    parts = []
    for chunk in chunks:
        if not as_is:
            chunk = chunk.cast(storage)
        if chunk.null_count:
            raise DataFormatError(f"{chunk.null_count} empty value(s) in a date/time column")
        dtype = np.dtype(np.int32 if storage == pa.int32() else np.int64)
        data = chunk.buffers()[1]
        parts.append(np.frombuffer(data, dtype=dtype, count=len(chunk), offset=chunk.offset * dtype.itemsize))
    return np.concatenate(parts).astype(np.int64) if parts else np.empty(0, dtype=np.int64)


def empty_table(schema: pa.Schema) -> pa.Table:
    """``schema.empty_table()`` (one empty chunk per column) without its pandas import."""
    return pa.Table.from_arrays([pa.nulls(0, field.type) for field in schema], schema=schema)


def calendar_years(days: np.ndarray) -> np.ndarray:
    """Calendar year of each day number (days since 1970-01-01)."""
    return days.astype("datetime64[D]").astype("datetime64[Y]").astype(np.int64) + 1970


def optional_floats(values: Sequence[float | None]) -> pa.Array:
    """float64 array from Python numbers, None -> null (NaN stays a value, as with ``pa.array``)."""
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    data = np.fromiter((0.0 if v is None else v for v in values), dtype=np.float64, count=len(values))
    return numpy_to_arrow(data, pa.float64(), nulls)


def optional_ints(values: Sequence[int | None]) -> pa.Array:
    """int64 array from Python ints, None -> null."""
    nulls = np.fromiter((v is None for v in values), dtype=bool, count=len(values))
    data = np.array([0 if v is None else v for v in values], dtype=np.int64)
    return numpy_to_arrow(data, pa.int64(), nulls)


def day_numbers(days: Sequence[dt.date]) -> np.ndarray:
    """Days since 1970-01-01 (Arrow's date32 values) of ``datetime.date`` objects, as int64."""
    return np.fromiter((d.toordinal() for d in days), dtype=np.int64, count=len(days)) - _EPOCH_ORDINAL


def date_array(days: Sequence[dt.date] | np.ndarray) -> pa.Array:
    """date32 array from ``datetime.date`` objects or from day numbers."""
    numbers = days if isinstance(days, np.ndarray) else day_numbers(days)
    return numpy_to_arrow(numbers.astype(np.int32), pa.date32())


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` with exactly ``schema``'s columns and types (a cast only when they differ: casting a
    table column by column costs ~8 us a column even when nothing changes)."""
    if table.schema.names != schema.names:
        table = table.select(schema.names)
    return table if table.schema == schema else table.cast(schema)


def strictly_increasing(keys: np.ndarray) -> bool:
    return bool(np.all(keys[1:] > keys[:-1]))
