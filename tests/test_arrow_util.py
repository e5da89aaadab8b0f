"""numpy <-> Arrow helpers: the same arrays (and Parquet bytes) as ``pa.array``, without importing pandas."""

from __future__ import annotations

import datetime as dt
import math
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest

from cxq_data.arrow_util import (
    arrow_to_int64,
    calendar_years,
    conform,
    date_array,
    empty_table,
    numpy_to_arrow,
    optional_floats,
    optional_ints,
    repeated_string,
    repeated_strings,
)
from cxq_data.errors import DataFormatError
from cxq_data.schema import ACTIONS_SCHEMA, PARTITION_SCHEMA


@pytest.mark.parametrize("values", [[], [1.5], [1.5, None, -0.0, math.nan, 1e308, 3]])
def test_optional_floats_equal_pa_array(values):
    ours, theirs = optional_floats(values), pa.array(values, type=pa.float64())
    assert ours.null_count == theirs.null_count
    assert [None if v is None else repr(v) for v in ours.to_pylist()] == \
        [None if v is None else repr(float(v)) for v in theirs.to_pylist()]


def test_ints_dates_strings_and_empty_tables_equal_pyarrow():
    assert optional_ints([1, None, -(2**63), 2**63 - 1]).equals(pa.array([1, None, -(2**63), 2**63 - 1], pa.int64()))
    days = [dt.date(1969, 12, 31), dt.date(2024, 2, 29), dt.date(1, 1, 1)]
    assert date_array(days).equals(pa.array(days, pa.date32()))
    assert repeated_string("BRK.B", 3).equals(pa.array(["BRK.B"] * 3, pa.string()))
    assert repeated_string("X", 0).equals(pa.array([], pa.string()))
    for schema in (PARTITION_SCHEMA, ACTIONS_SCHEMA):
        assert empty_table(schema).equals(schema.empty_table())
    assert numpy_to_arrow(np.array([3, 1], np.int64)).equals(pa.array([3, 1], pa.int64()))


def test_repeated_strings_stack_runs_of_each_value():
    assert repeated_strings(["BRK.B", "É", "A"], [2, 0, 3]).equals(pa.array(["BRK.B"] * 2 + ["A"] * 3, pa.string()))
    assert repeated_strings(["É"], [2]).equals(pa.array(["É", "É"]))
    assert repeated_strings([], []).equals(pa.array([], pa.string()))


def test_int64_views_years_and_nulls_named():
    dates = pa.chunked_array([pa.array([dt.date(1999, 12, 31)]), pa.array([dt.date(2000, 1, 1), dt.date(1960, 6, 1)])])
    days = arrow_to_int64(dates.slice(0))
    assert days.tolist() == [10956, 10957, -3501]
    assert calendar_years(days).tolist() == [1999, 2000, 1960]
    assert arrow_to_int64(pa.array([5, 6, 7], pa.int64()).slice(1)).tolist() == [6, 7]  # offset honoured
    with pytest.raises(DataFormatError, match="1 empty value"):
        arrow_to_int64(pa.array([dt.date(2000, 1, 1), None]))


def test_helpers_do_not_import_pandas():
    code = ("import sys, datetime as dt; from cxq_data import arrow_util as a; from cxq_data.schema import "
            "PARTITION_SCHEMA as S; a.optional_floats([1.0, None]); a.optional_ints([1]); "
            "a.date_array([dt.date(2020, 1, 1)]); a.empty_table(S); a.repeated_string('A', 2); "
            "a.arrow_to_int64(a.date_array([dt.date(2020, 1, 1)])); print('pandas' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_conform_casts_only_what_differs():
    table = pa.table({"date": pa.array([dt.date(2024, 1, 2)]), "x": pa.array([1], pa.int32())})
    target = pa.schema([("x", pa.int64()), ("date", pa.date32())])
    out = conform(table, target)
    assert out.schema == target and out.column("x").to_pylist() == [1]
    assert conform(out, target) is out  # already conforming: the same table, no cast


@pytest.mark.parametrize("dates", [[1, 2, 5], [5, 1, 2]])
def test_lake_canonical_shortcut_equals_the_sorting_path(dates, monkeypatch):
    from cxq_data import lake

    days = [dt.date(2024, 1, d) for d in dates]
    n = len(days)
    table = pa.Table.from_arrays(
        [date_array(days), *(optional_floats([1.0 * d for d in dates]) for _ in range(5)), optional_ints(dates),
         numpy_to_arrow(np.zeros(n, np.int64), pa.timestamp("us", tz="UTC"))], schema=PARTITION_SCHEMA)
    quick = lake._canonical(table, PARTITION_SCHEMA, "date", "x")
    monkeypatch.setattr(lake, "strictly_increasing", lambda keys: False)
    general = lake._canonical(table, PARTITION_SCHEMA, "date", "x")
    assert quick.equals(general) and quick.column("date").to_pylist() == sorted(days)
    with pytest.raises(DataFormatError, match="duplicate date"):
        lake._canonical(pa.concat_tables([table, table]), PARTITION_SCHEMA, "date", "x")
