"""DBN cbbo -> Parquet conversion: real Databento fixtures, synthetic days, and bad input."""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import threading
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cxq_data.errors import DataFormatError
from cxq_data.options.cbbo_table import CBBO_SCHEMA
from cxq_data.options.dbn_convert import SchemaMismatchError, convert_dbn
from cxq_data.options.dbn_stream import TruncatedDbnError
from cxq_data.options.symbol_map import MappingError
from cxq_data.options.synth import (
    dbn_bytes,
    generate_day,
    symbology_document,
    write_cbbo_day,
    write_cbbo_file,
)

DBN = Path(__file__).parent / "data" / "dbn"
OPRA_CBBO_1M = DBN / "databento-python" / "OPRA.PILLAR" / "test_data.cbbo-1m.dbn.zst"
DAY = dt.date(2025, 8, 7)
UTC = dt.UTC


def _rows(path: Path) -> list[dict]:
    return pq.read_table(path).to_pylist()


def _no_leftovers(folder: Path, keep: set[str]) -> None:
    assert {p.name for p in folder.iterdir()} == keep


def test_real_opra_cbbo_1m_fixture(tmp_path: Path) -> None:
    result = convert_dbn(OPRA_CBBO_1M, tmp_path / "out.parquet")
    assert (result.rows, result.dbn_version, result.dataset, result.schema) == (4, 3, "OPRA.PILLAR", "cbbo-1m")
    assert result.date == dt.date(2025, 2, 20)
    rows = _rows(tmp_path / "out.parquet")
    assert [r["ts_recv"] for r in rows] == [
        dt.datetime(2025, 2, 20, 13, 1, tzinfo=UTC), dt.datetime(2025, 2, 20, 14, 31, tzinfo=UTC),
        dt.datetime(2025, 2, 20, 14, 32, tzinfo=UTC), dt.datetime(2025, 2, 20, 14, 33, tzinfo=UTC),
    ]
    first, second = rows[0], rows[1]
    # record 1 is all UNDEF in Databento's file: sentinels must become nulls, sizes stay 0
    assert first["ts_event"] is None
    assert (first["bid_px"], first["ask_px"], first["price"]) == (None, None, None)
    assert (first["bid_sz"], first["ask_sz"], first["size"]) == (0, 0, 0)
    for row in rows:
        assert row["symbol"] == "AAPL  250221C00250000"
        assert (row["root"], row["expiration"], row["right"], row["strike"]) == ("AAPL", dt.date(2025, 2, 21), "C", 250.0)
        assert (row["instrument_id"], row["publisher_id"], row["flags"]) == (16783963, 30, 194)
    assert (second["bid_px"], second["ask_px"], second["bid_sz"], second["ask_sz"]) == (0.32, 0.34, 104, 132)
    assert (second["bid_pb"], second["ask_pb"], second["price"], second["size"]) == (29, 23, 0.34, 1)
    assert second["ts_event"] < second["ts_recv"]


def _databento_frame(path: Path):  # type: ignore[no-untyped-def]
    import databento

    with warnings.catch_warnings():  # pandas deprecation warnings from inside databento, not ours
        warnings.simplefilter("ignore")
        df = databento.DBNStore.from_file(path).to_df().reset_index()
    return df.sort_values(["instrument_id", "ts_recv"], kind="stable").reset_index(drop=True)


@pytest.mark.parametrize("source", ["real", "synthetic"])
def test_values_equal_databentos_own_to_df(tmp_path: Path, source: str) -> None:
    src = OPRA_CBBO_1M if source == "real" else write_cbbo_day(tmp_path / "d.dbn.zst", DAY, instruments=40)
    convert_dbn(src, tmp_path / "out.parquet")
    ours = pq.read_table(tmp_path / "out.parquet").to_pandas()
    ours = ours.sort_values(["instrument_id", "ts_recv"], kind="stable").reset_index(drop=True)
    theirs = _databento_frame(src)
    assert len(ours) == len(theirs) > 0
    pairs = {"ts_recv": "ts_recv", "ts_event": "ts_event", "bid_px": "bid_px_00", "ask_px": "ask_px_00",
             "bid_sz": "bid_sz_00", "ask_sz": "ask_sz_00", "bid_pb": "bid_pb_00", "ask_pb": "ask_pb_00",
             "price": "price", "size": "size", "flags": "flags", "publisher_id": "publisher_id",
             "instrument_id": "instrument_id"}
    for mine, theirs_col in pairs.items():
        a, b = ours[mine].to_numpy(), theirs[theirs_col].to_numpy()
        if ours[mine].dtype.kind == "f":
            np.testing.assert_array_equal(a, b.astype(float), err_msg=mine)
        else:
            assert (ours[mine].isna().to_numpy() == theirs[theirs_col].isna().to_numpy()).all(), mine
            assert (ours[mine].dropna().to_numpy() == theirs[theirs_col].dropna().to_numpy()).all(), mine
    assert ours["symbol"].astype(str).tolist() == theirs["symbol"].astype(str).tolist()


def _same_records(a: Path, b: Path) -> None:
    ta, tb = pq.read_table(a), pq.read_table(b)
    assert ta.equals(tb)


@pytest.mark.parametrize(
    ("name", "version"),
    [("databento-cpp/test_data.cbbo-1s.v1.dbn.zst", 1), ("databento-cpp/test_data.cbbo.v1.dbn", 1),
     ("dbn/test_data.cbbo-1s.dbn", 2), ("dbn/test_data.cbbo-1s.v2.dbn.zst", 2), ("dbn/test_data.cbbo-1s.v3.dbn.zst", 3)],
)
def test_real_v1_v2_v3_cbbo_files_give_equal_records(tmp_path: Path, name: str, version: int) -> None:
    reference = tmp_path / "v3.parquet"
    convert_dbn(DBN / "dbn/test_data.cbbo-1s.v3.dbn.zst", reference)
    result = convert_dbn(DBN / name, tmp_path / "out.parquet")
    assert (result.dbn_version, result.schema, result.rows) == (version, "cbbo-1s", 2)
    _same_records(reference, tmp_path / "out.parquet")
    rows = _rows(tmp_path / "out.parquet")
    assert rows[0]["symbol"] == "ESH1" and rows[0]["root"] is None and rows[0]["strike"] is None  # not an option
    assert rows[0]["bid_px"] == pytest.approx(3720.25)


def test_synthetic_v1_v2_v3_give_identical_tables(tmp_path: Path) -> None:
    outs = []
    for version in (1, 2, 3):
        src = write_cbbo_day(tmp_path / f"v{version}.dbn.zst", DAY, version=version)
        result = convert_dbn(src, tmp_path / f"v{version}.parquet")
        assert result.dbn_version == version
        assert pq.read_schema(tmp_path / f"v{version}.parquet").metadata[b"cxq.dbn_version"] == str(version).encode()
        outs.append(pq.read_table(tmp_path / f"v{version}.parquet"))
    assert outs[0].num_rows > 100
    assert outs[0].equals(outs[1]) and outs[1].equals(outs[2])


def _corrupt_copy(src: Path, dst: Path, how: str) -> Path:
    data = bytearray(src.read_bytes())
    if how == "flip":
        data[len(data) // 2] ^= 0xFF
    elif how == "half":
        data = data[: len(data) // 2]
    elif how == "mid_record":
        data = data[:-30]
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("sort", ["file", "row_group"])
@pytest.mark.parametrize(
    ("how", "compress", "error", "message"),
    [
        ("flip", True, DataFormatError, "corrupt zstd data"),
        ("half", True, TruncatedDbnError, "zstd frame ends early"),
        ("mid_record", False, TruncatedDbnError, "trailing byte"),
        ("half", False, TruncatedDbnError, "truncated"),
    ],
)
def test_damaged_input_fails_and_writes_nothing(tmp_path: Path, how: str, compress: bool, error: type,
                                                message: str, sort: str) -> None:
    good = tmp_path / "src" / "good.dbn"
    good.parent.mkdir()
    write_cbbo_file(good, [DAY], instruments=60, minutes=30, compress=compress)
    bad = _corrupt_copy(good, tmp_path / "src" / "bad.dbn", how)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    existing = out_dir / "day.parquet"
    existing.write_bytes(b"previous good file")
    threads_before = threading.active_count()
    with pytest.raises(error, match=message) as info:
        convert_dbn(bad, existing, chunk_records=64, sort=sort)
    assert "bad.dbn" in str(info.value)
    assert threading.active_count() == threads_before  # read-ahead / writer threads are gone
    assert existing.read_bytes() == b"previous good file"  # nothing good lost
    _no_leftovers(out_dir, {"day.parquet"})  # no temp file left


def test_header_cut_short_is_truncation(tmp_path: Path) -> None:
    raw = dbn_bytes([generate_day(DAY)], compress=False)
    (tmp_path / "h.dbn").write_bytes(raw[:50])
    with pytest.raises(TruncatedDbnError, match="metadata header"):
        convert_dbn(tmp_path / "h.dbn", tmp_path / "out" / "x.parquet")
    _no_leftovers(tmp_path / "out", set())


@pytest.mark.parametrize(
    ("name", "schema"),
    [("databento-python/OPRA.PILLAR/test_data.ohlcv-1m.dbn.zst", "ohlcv-1m"),
     ("dbn/test_data.ohlcv-1d.v3.dbn.zst", "ohlcv-1d"),  # zero records: still the wrong schema
     ("dbn/test_data.statistics.v1.dbn.zst", "statistics")],
)
def test_non_cbbo_schema_is_an_error_naming_file_and_schema(tmp_path: Path, name: str, schema: str) -> None:
    with pytest.raises(SchemaMismatchError, match=schema) as info:
        convert_dbn(DBN / name, tmp_path / "x.parquet")
    assert Path(name).name in str(info.value)
    assert not (tmp_path / "x.parquet").exists()


def test_not_a_dbn_file(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="not a DBN file"):
        convert_dbn(DBN / "LICENSE-Apache-2.0.txt", tmp_path / "x.parquet")


def test_empty_day_gives_an_empty_file_with_the_full_schema(tmp_path: Path) -> None:
    src = write_cbbo_day(tmp_path / "empty.dbn.zst", DAY, instruments=0)
    result = convert_dbn(src, tmp_path / "empty.parquet")
    assert (result.rows, result.ts_recv_min, result.date) == (0, None, DAY)
    table = pq.read_table(tmp_path / "empty.parquet")
    assert table.num_rows == 0
    assert table.schema.remove_metadata().equals(CBBO_SCHEMA)
    assert table.schema.metadata[b"cxq.rows"] == b"0"


def test_parent_keyed_mapping_is_not_a_symbol(tmp_path: Path) -> None:
    src = write_cbbo_day(tmp_path / "p.dbn.zst", DAY, stype_in="parent", mapping="parent_key")
    with pytest.raises(MappingError, match="SPY.OPT") as info:
        convert_dbn(src, tmp_path / "p.parquet")
    assert "p.dbn.zst" in str(info.value)
    assert not (tmp_path / "p.parquet").exists()
    # a raw-keyed symbology.json rescues it, with the same rows as a raw-keyed header
    doc = symbology_document([generate_day(DAY)])
    convert_dbn(src, tmp_path / "p.parquet", symbology=doc)
    convert_dbn(write_cbbo_day(tmp_path / "r.dbn.zst", DAY), tmp_path / "r.parquet")
    _same_records(tmp_path / "r.parquet", tmp_path / "p.parquet")
    parent_doc = {"result": {"SPY.OPT": [{"d0": "2025-08-07", "d1": "2025-08-08", "s": "1"}]}}
    with pytest.raises(MappingError, match="parent"):
        convert_dbn(src, tmp_path / "q.parquet", symbology=parent_doc)


def test_symbology_json_fallback_when_metadata_has_no_mappings(tmp_path: Path) -> None:
    import json

    src = write_cbbo_day(tmp_path / "n.dbn.zst", DAY, mapping="none")
    with pytest.raises(MappingError, match="no symbol mappings.*no symbology.json"):
        convert_dbn(src, tmp_path / "n.parquet")
    sym_path = tmp_path / "symbology.json"
    sym_path.write_text(json.dumps(symbology_document([generate_day(DAY)])))
    convert_dbn(src, tmp_path / "n.parquet", symbology=sym_path)
    convert_dbn(write_cbbo_day(tmp_path / "r.dbn.zst", DAY), tmp_path / "r.parquet")
    _same_records(tmp_path / "r.parquet", tmp_path / "n.parquet")


def test_unmapped_instrument_fails_loudly(tmp_path: Path) -> None:
    day = generate_day(DAY)
    victim = int(day.records["instrument_id"][-1])
    partial = type(day)(day.day, day.records, {k: v for k, v in day.id_to_symbol.items() if k != victim})
    (tmp_path / "u.dbn.zst").write_bytes(dbn_bytes([partial]))
    with pytest.raises(MappingError, match=f"instrument_id {victim}"):
        convert_dbn(tmp_path / "u.dbn.zst", tmp_path / "u.parquet")


def _id_to_symbol_per_day(path: Path) -> dict[tuple[dt.date, int], str]:
    return {(r["ts_recv"].date(), r["instrument_id"]): r["symbol"] for r in _rows(path)}


def test_ids_are_mapped_per_day_in_a_two_day_file_and_across_files(tmp_path: Path) -> None:
    day2 = DAY + dt.timedelta(days=1)
    src = write_cbbo_file(tmp_path / "two.dbn.zst", [DAY, day2], id_start=5_000)
    result = convert_dbn(src, tmp_path / "two.parquet")
    assert result.date is None  # spans two days
    expected = {**{(DAY, i): s for i, s in generate_day(DAY, id_start=5_000).id_to_symbol.items()},
                **{(day2, i): s for i, s in generate_day(day2, id_start=5_000).id_to_symbol.items()}}
    got = _id_to_symbol_per_day(tmp_path / "two.parquet")
    assert got.items() <= expected.items() and len(got) > 100
    shared = {i for d, i in got if d == DAY} & {i for d, i in got if d == day2}
    assert sum(got[(DAY, i)] != got[(day2, i)] for i in shared) > len(shared) // 2  # same id, other contract
    # the same two days as two one-day files map identically
    for d in (DAY, day2):
        convert_dbn(write_cbbo_day(tmp_path / f"{d}.dbn.zst", d, id_start=5_000), tmp_path / f"{d}.parquet")
        one = _id_to_symbol_per_day(tmp_path / f"{d}.parquet")
        assert one == {k: v for k, v in got.items() if k[0] == d}


def test_deterministic_sorted_and_chunking_independent(tmp_path: Path) -> None:
    """``sort="file"``: one global order, whatever the chunk size."""
    src = write_cbbo_day(tmp_path / "d.dbn.zst", DAY, instruments=200, minutes=60)
    first = convert_dbn(src, tmp_path / "a.parquet", sort="file")
    second = convert_dbn(src, tmp_path / "b.parquet", sort="file")
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert first.sha256 == second.sha256 == hashlib.sha256((tmp_path / "a.parquet").read_bytes()).hexdigest()
    small = convert_dbn(src, tmp_path / "small.parquet", chunk_records=500, sort="file")  # many row groups
    assert pq.ParquetFile(tmp_path / "small.parquet").num_row_groups > 2  # row groups hold whole 64-symbol buckets
    assert small.rows == first.rows
    whole, chunked = pq.read_table(tmp_path / "a.parquet"), pq.read_table(tmp_path / "small.parquet")
    assert whole.cast(whole.schema).to_pylist() == chunked.to_pylist()  # same rows, same global order
    keys = [(r["expiration"], r["strike"], r["symbol"], r["ts_recv"]) for r in chunked.to_pylist()]
    assert keys == sorted(keys)
    # row-group statistics on expiration/strike follow the global order: readers can prune
    meta = pq.ParquetFile(tmp_path / "small.parquet").metadata
    exp_index = meta.schema.to_arrow_schema().get_field_index("expiration")
    spans = [(meta.row_group(i).column(exp_index).statistics.min, meta.row_group(i).column(exp_index).statistics.max)
             for i in range(meta.num_row_groups)]
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    assert [c.column_index for c in meta.row_group(0).sorting_columns] == [
        whole.schema.get_field_index(n) for n in ("expiration", "strike", "symbol", "ts_recv")]


@pytest.mark.parametrize("shuffle", [False, True])
def test_row_group_sort_holds_the_same_rows_sorted_per_row_group(tmp_path: Path, shuffle: bool) -> None:
    day = generate_day(DAY, instruments=150, minutes=40)
    records = day.records[np.random.default_rng(2).permutation(len(day.records))] if shuffle else day.records
    src = tmp_path / "d.dbn.zst"
    src.write_bytes(dbn_bytes([type(day)(day.day, records, day.id_to_symbol)]))
    whole = convert_dbn(src, tmp_path / "file.parquet", sort="file")
    parts = convert_dbn(src, tmp_path / "rg.parquet", sort="row_group", chunk_records=1_000)
    again = convert_dbn(src, tmp_path / "rg2.parquet", sort="row_group", chunk_records=1_000)
    assert parts.sha256 == again.sha256 and parts.sha256 != whole.sha256  # deterministic, other order
    assert (parts.rows, parts.ts_recv_min, parts.ts_recv_max, parts.date) == (
        whole.rows, whole.ts_recv_min, whole.ts_recv_max, whole.date)
    pf = pq.ParquetFile(tmp_path / "rg.parquet")
    assert pf.num_row_groups == -(-whole.rows // 1_000)
    assert pf.schema_arrow == pq.read_schema(tmp_path / "file.parquet")  # same schema and cxq.* except scope
    for i in range(pf.num_row_groups):
        keys = [(r["expiration"], r["strike"], r["symbol"], r["ts_recv"]) for r in pf.read_row_group(i).to_pylist()]
        assert keys == sorted(keys)
    key = lambda r: (r["expiration"], r["strike"], r["symbol"], r["ts_recv"])
    assert sorted(_rows(tmp_path / "rg.parquet"), key=key) == _rows(tmp_path / "file.parquet")
    # time slices: statistics on the times (they prune), none on contract keys (they could not)
    names = pf.schema_arrow.names
    first = pf.metadata.row_group(0)
    with_stats = {n for n in names if first.column(names.index(n)).is_stats_set}
    assert with_stats == {"ts_recv", "ts_event"}
    assert first.column(names.index("ts_recv")).statistics.max <= pf.metadata.row_group(1).column(
        names.index("ts_recv")).statistics.min or shuffle


@pytest.mark.parametrize("sort", ["file", "row_group"])
def test_key_value_metadata_and_source_hash_check(tmp_path: Path, sort: str) -> None:
    src = write_cbbo_day(tmp_path / "d.dbn.zst", DAY)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    result = convert_dbn(src, tmp_path / "d.parquet", source_name="opra-pillar-20250807.cbbo-1m.dbn.zst",
                         source_sha256=f"sha256:{digest}", sort=sort)
    meta = {k.decode(): v.decode() for k, v in pq.read_schema(tmp_path / "d.parquet").metadata.items()
            if k.startswith(b"cxq.")}
    table = pq.read_table(tmp_path / "d.parquet")
    ts = table["ts_recv"].cast(pa.int64()).to_numpy()
    first_minute = dt.datetime.fromtimestamp(ts.min() / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    assert meta == {
        "cxq.source_file": "opra-pillar-20250807.cbbo-1m.dbn.zst", "cxq.source_sha256": digest,
        "cxq.dbn_version": "3", "cxq.dataset": "OPRA.PILLAR", "cxq.schema": "cbbo-1m",
        "cxq.rows": str(table.num_rows), "cxq.sort": "expiration,strike,symbol,ts_recv", "cxq.sort_scope": sort,
        "cxq.ts_recv_min": first_minute, "cxq.ts_recv_max": "2025-08-07T15:00:00.000000000Z",
    }
    assert first_minute < "2025-08-07T14:30"  # the pre-open all-UNDEF rows come first in time
    assert result.ts_recv_min == ts.min() and result.ts_recv_max == ts.max()
    assert result.source_sha256 == digest
    with pytest.raises(DataFormatError, match="sha256"):
        convert_dbn(src, tmp_path / "e.parquet", source_sha256="0" * 64, sort=sort)
    assert not (tmp_path / "e.parquet").exists()


def test_all_undef_and_no_bid_rows_become_nulls(tmp_path: Path) -> None:
    src = write_cbbo_day(tmp_path / "d.dbn.zst", DAY, instruments=120)
    convert_dbn(src, tmp_path / "d.parquet")
    rows = _rows(tmp_path / "d.parquet")
    undef = [r for r in rows if r["ask_px"] is None]
    no_bid = [r for r in rows if r["bid_px"] is None and r["ask_px"] is not None]
    assert undef and all(r["ts_event"] is None and r["price"] is None and r["bid_sz"] == 0 for r in undef)
    assert no_bid and all(r["bid_sz"] == 0 and r["ask_px"] > 0 for r in no_bid)
    quoted = [r for r in rows if r["bid_px"] is not None]
    assert all(r["bid_px"] < r["ask_px"] for r in quoted)


def test_records_out_of_time_order_give_the_same_table(tmp_path: Path) -> None:
    day = generate_day(DAY, instruments=80)
    shuffled = day.records[np.random.default_rng(1).permutation(len(day.records))]
    (tmp_path / "s.dbn.zst").write_bytes(dbn_bytes([type(day)(day.day, shuffled, day.id_to_symbol)]))
    (tmp_path / "o.dbn.zst").write_bytes(dbn_bytes([day]))
    convert_dbn(tmp_path / "s.dbn.zst", tmp_path / "s.parquet", chunk_records=300, sort="file")
    convert_dbn(tmp_path / "o.dbn.zst", tmp_path / "o.parquet", chunk_records=300, sort="file")
    _same_records(tmp_path / "o.parquet", tmp_path / "s.parquet")


def test_symbology_json_of_a_whole_job_is_cut_to_the_files_day(tmp_path: Path) -> None:
    days = [DAY + dt.timedelta(days=k) for k in range(3)]
    doc = symbology_document([generate_day(d, id_start=7_000) for d in days])  # same ids every day
    src = write_cbbo_day(tmp_path / "mid.dbn.zst", days[1], mapping="none", id_start=7_000)
    convert_dbn(src, tmp_path / "mid.parquet", symbology=doc)
    convert_dbn(write_cbbo_day(tmp_path / "ref.dbn.zst", days[1], id_start=7_000), tmp_path / "ref.parquet")
    _same_records(tmp_path / "ref.parquet", tmp_path / "mid.parquet")
    from cxq_data.options.symbol_map import intervals_from_symbology

    kept = intervals_from_symbology(doc, "symbology.json", (days[1], days[2]))
    assert {iv.d0 for iv in kept} == {days[1]} and len(kept) == len(intervals_from_symbology(doc, "s")) // 3
