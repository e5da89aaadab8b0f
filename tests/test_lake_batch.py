"""Batch processing: same bytes as one-by-one, indexes only after the sync barrier, staged serving, skip by hash."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pyarrow as pa
import pytest
from lake_support import synthetic_bars, test_normalizer, trading_days, tree_state, ts, write_raw_lines  # noqa: F401

from cxq_data import lake, lake_batch, lake_index
from cxq_data.lake import Status, process_symbol
from cxq_data.lake_batch import process_batch
from cxq_data.paths import DataLayout
from cxq_data.serving import build_serving, read_manifest

pytestmark = pytest.mark.usefixtures("test_normalizer")

DAYS = trading_days(dt.date(2021, 1, 1), dt.date(2023, 12, 31))
SYMBOLS = ["AAPL", "BRK.B", "IBM", "MSFT", "ORCL"]


def _raw(layout: DataLayout, source: str = "stooq", symbols: list[str] = SYMBOLS) -> None:
    for sym in symbols:
        write_raw_lines(layout, source, sym, synthetic_bars(sym, DAYS), ts(0))


def _bytes(layout: DataLayout) -> dict[str, bytes]:
    return {k: v[0] for k, v in tree_state(layout.processed).items()}


@pytest.fixture
def small_chunks(monkeypatch):
    monkeypatch.setattr(lake_batch, "CHUNK_SYMBOLS", 2)  # 5 symbols -> 3 chunks on 2 worker processes


def test_batch_on_workers_writes_the_same_bytes_as_one_by_one(tmp_path, small_chunks):
    one, batch = DataLayout(tmp_path / "one"), DataLayout(tmp_path / "batch")
    for layout in (one, batch):
        _raw(layout)
    for sym in SYMBOLS:
        process_symbol(one, "stooq", sym)
    result = process_batch(batch, "stooq", workers=2, progress=False)
    assert [r.symbol for r in result.summary.results] == SYMBOLS
    assert all(r.status is Status.WRITTEN and r.rows == len(DAYS) for r in result.summary.results)
    assert _bytes(one) == _bytes(batch) and len(_bytes(one)) == len(SYMBOLS) * 4  # 3 years + index each
    again = process_batch(batch, "stooq", workers=2, progress=False)
    assert {r.status for r in again.summary.results} == {Status.UNCHANGED}


def test_indexes_are_written_only_after_the_partitions_are_synced(data_dir, monkeypatch, small_chunks):
    layout = DataLayout(data_dir)
    _raw(layout)
    snapshots = []  # at each barrier: (symbols with an index, partition files present)

    def barrier(path) -> None:
        assert path == layout.processed  # the lake's filesystem
        snapshots.append(({p.parent.parent.name for p in layout.processed.glob("*/*/_index.json")},
                          {p.relative_to(layout.root).as_posix() for p in layout.processed.glob("*/*/year=*/data.parquet")}))

    monkeypatch.setattr(lake_batch, "sync_filesystem", barrier)
    process_batch(layout, "stooq", workers=2, progress=False)
    assert snapshots[0][0] == set()  # the first barrier precedes every index
    assert len(snapshots[-1][0]) == len(SYMBOLS)  # the last one follows them all
    for sym in SYMBOLS:
        index = lake_index.read_index(layout, sym, "stooq")
        first_seen = next(i for i, (indexed, _) in enumerate(snapshots) if f"symbol={sym}" in indexed)
        # some barrier before the index appeared already saw every partition the index names
        assert any({e["file"] for e in index["daily"].values()} <= files for _, files in snapshots[:first_seen])


def test_index_committer_commits_while_chunks_still_arrive_and_reraises_errors(data_dir, monkeypatch):
    layout = DataLayout(data_dir)
    _raw(layout, symbols=["AAPL", "IBM"])
    pendings = [lake.prepare_symbol(layout, "stooq", sym, durable=False) for sym in ("AAPL", "IBM")]
    committer = lake_batch.IndexCommitter(layout, keyed=True)
    committer.add([(pendings[0].result, pendings[0].index)])
    deadline = dt.datetime.now() + dt.timedelta(seconds=30)
    while lake_index.read_index(layout, "AAPL", "stooq") is None and dt.datetime.now() < deadline:
        time.sleep(0.01)  # written by the thread before close() is called
    assert lake_index.read_index(layout, "AAPL", "stooq") == pendings[0].index
    committer.add([(pendings[1].result, pendings[1].index)])
    committed = committer.close()
    assert sorted(committed) == sorted(str(lake_index.index_path(layout, s, "stooq")) for s in ("AAPL", "IBM"))
    assert pendings[1].result.files_written == 4  # 3 partitions + the index, counted by the commit

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(lake, "write_json_if_changed", full_disk)
    failing = lake_batch.IndexCommitter(layout)
    failing.add([(pendings[0].result, pendings[0].index)])
    with pytest.raises(OSError, match="No space left"):
        failing.close()


def test_one_bad_symbol_fails_alone_in_a_batch(data_dir, small_chunks):
    layout = DataLayout(data_dir)
    _raw(layout)
    write_raw_lines(layout, "stooq", "BAD", ["D,2023-13-45,1,2,3,4,,5"], ts(0))
    summary = process_batch(layout, "stooq", workers=2, progress=False).summary
    status = {r.symbol: r.status for r in summary.results}
    assert status.pop("BAD") is Status.FAILED and set(status.values()) == {Status.WRITTEN}
    assert not layout.symbol_source_dir("BAD", "stooq").exists()


def test_an_unexpected_error_type_also_fails_only_its_symbol(data_dir, small_chunks):
    """A normalizer bug (here pyarrow's OverflowError for a volume beyond BIGINT) once stopped the run."""
    layout = DataLayout(data_dir)
    _raw(layout)
    write_raw_lines(layout, "stooq", "HUGE", [f"D,2023-06-01,1,2,0.5,1.5,,{2**70}"], ts(0))
    summary = process_batch(layout, "stooq", workers=2, progress=False).summary
    by_symbol = {r.symbol: r for r in summary.results}
    huge = by_symbol.pop("HUGE")
    assert huge.status is Status.FAILED and huge.reason.startswith("unexpected OverflowError")
    assert {r.status for r in by_symbol.values()} == {Status.WRITTEN} and len(by_symbol) == len(SYMBOLS)


def test_serving_from_staged_tables_equals_serving_from_disk(tmp_path, small_chunks):
    staged_dir, disk_dir = DataLayout(tmp_path / "staged"), DataLayout(tmp_path / "disk")
    staged = lake_batch.StagedDaily()
    for layout in (staged_dir, disk_dir):
        for source in ("stooq", "yfinance"):
            _raw(layout, source)
            result = process_batch(layout, source, workers=2, progress=False, keep_tables=layout is staged_dir)
            if result.staged is not None:
                staged.merge(result.staged)
    stacked = []
    real = staged.member_slices
    staged.member_slices = lambda key, members: stacked.append(key) or real(key, members)  # type: ignore[method-assign]
    build_serving(staged_dir, staged=staged)
    assert len(stacked) == 6  # every group came from whole staged chunks
    build_serving(disk_dir)
    files = read_manifest(staged_dir, "daily")["files"]
    assert files == read_manifest(disk_dir, "daily")["files"] and len(files) == 6  # 2 sources x 3 years
    for f in files:
        a = (staged_dir.serving_dataset("daily") / f["path"]).read_bytes()
        assert a == (disk_dir.serving_dataset("daily") / f["path"]).read_bytes()


def test_member_slices_merge_adjacent_rows_and_refuse_unknown_content():
    staged = lake_batch.StagedDaily()
    table = pa.table({"symbol": ["A", "A", "B", "C"], "x": [1, 2, 3, 4]})
    staged.add_chunk(("s", 2024), table, [("A", "ha", 0, 2), ("B", "hb", 2, 1), ("C", "hc", 3, 1)])
    staged.add_chunk(("s", 2024), pa.table({"symbol": ["D"], "x": [5]}), [("D", "hd", 0, 1)])
    slices = staged.member_slices(("s", 2024), [("A", "ha"), ("B", "hb"), ("D", "hd")])
    assert [t.to_pydict() for t in slices] == [{"symbol": ["A", "A", "B"], "x": [1, 2, 3]},
                                               {"symbol": ["D"], "x": [5]}]
    assert staged.member_slices(("s", 2024), [("A", "ha"), ("B", "other")]) is None  # restated since
    assert staged.member_slices(("s", 2024), [("E", "he")]) is None
    assert staged.member_slices(("s", 2025), [("A", "ha")]) is None


def test_stale_staged_tables_are_not_used(data_dir):
    layout = DataLayout(data_dir)
    _raw(layout)
    staged = process_batch(layout, "stooq", workers=1, progress=False, keep_tables=True).staged
    # AAPL is restated after the batch: its staged 2023 rows no longer match the index's sha256.
    write_raw_lines(layout, "stooq", "AAPL", ["D,2023-06-01,1,2,0.5,1.5,,77"], ts(5))
    process_symbol(layout, "stooq", "AAPL")
    build_serving(layout, staged=staged)
    import duckdb

    path = next(layout.serving_dataset("daily").glob("source=stooq/year=2023/part-*.parquet"))
    row = duckdb.sql(f"SELECT close, volume FROM '{path}' WHERE symbol = 'AAPL' AND date = '2023-06-01'").fetchall()
    assert row == [(1.5, 77)]


def test_unchanged_years_are_skipped_by_content_hash_without_encoding(data_dir, monkeypatch):
    layout = DataLayout(data_dir)
    _raw(layout, symbols=["AAPL"])
    process_symbol(layout, "stooq", "AAPL")
    encoded = []
    real = lake.partition_bytes
    monkeypatch.setattr(lake, "partition_bytes", lambda t: encoded.append(t.num_rows) or real(t))
    write_raw_lines(layout, "stooq", "AAPL", ["D,2023-06-01,1,2,0.5,1.5,,77"], ts(5))  # restates one 2023 day
    result = process_symbol(layout, "stooq", "AAPL")
    assert result.status is Status.WRITTEN and len(encoded) == 1  # only 2023 was encoded
    # A partition file that no longer matches its index entry is rewritten, not trusted.
    victim = layout.partition_file("AAPL", "stooq", 2021)
    good = victim.read_bytes()
    victim.write_bytes(b"broken")
    encoded.clear()
    process_symbol(layout, "stooq", "AAPL")
    assert len(encoded) == 1 and victim.read_bytes() == good
    index = json.loads(lake_index.index_path(layout, "AAPL", "stooq").read_text())
    assert all(len(e["content"]) == 64 for e in index["daily"].values())


# ------------------------------------------------------------------ incremental path (lake_append)
NEW_DAY = ["D,2024-01-02,1,2,0.5,1.5,,77", "D,2023-06-01,3,4,2.5,3.5,3.4,88"]  # a new year + a restatement


def _spy_normalized(monkeypatch) -> list[int]:
    calls: list[int] = []
    real = lake._normalize_records
    monkeypatch.setattr(lake, "_normalize_records", lambda records, parsed=None: calls.append(len(records)) or real(records, parsed))
    return calls


def test_new_raw_file_takes_the_incremental_path_with_the_full_paths_bytes(tmp_path, monkeypatch):
    step, once = DataLayout(tmp_path / "step"), DataLayout(tmp_path / "once")
    write_raw_lines(step, "stooq", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    process_symbol(step, "stooq", "AAPL")
    before = tree_state(step.processed)
    write_raw_lines(step, "stooq", "AAPL", NEW_DAY, ts(1))
    calls = _spy_normalized(monkeypatch)
    result = process_symbol(step, "stooq", "AAPL")
    assert calls == [1]  # only the new raw file was normalized
    assert result.years == [2021, 2022, 2023, 2024] and result.rows == len(DAYS) + 1
    for sym_year in ("2021", "2022"):  # untouched years: same bytes, same mtime
        key = f"symbol=AAPL/source=stooq/year={sym_year}/data.parquet"
        assert tree_state(step.processed)[key] == before[key]
    write_raw_lines(once, "stooq", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    write_raw_lines(once, "stooq", "AAPL", NEW_DAY, ts(1))
    process_symbol(once, "stooq", "AAPL")
    assert calls == [1, 2]  # no index yet: the full path
    assert _bytes(step) == _bytes(once)  # partitions and index byte-identical


@pytest.mark.parametrize("spoil", ["code", "partition", "raw"])
def test_incremental_path_is_refused_when_its_preconditions_fail(data_dir, monkeypatch, spoil):
    layout = DataLayout(data_dir)
    write_raw_lines(layout, "stooq", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    process_symbol(layout, "stooq", "AAPL")
    index_file = lake_index.index_path(layout, "AAPL", "stooq")
    index = json.loads(index_file.read_text())
    if spoil == "code":  # another normalizer/lake version wrote the index
        index["code"] = "0" * 32
    elif spoil == "raw":  # the index lists a raw file that is no longer there
        index["raw"].insert(0, {"file": "raw/stooq/AAPL/daily/gone.csv", "kind": "daily", "sha256": "0" * 64})
    else:  # the 2023 partition is not the file the index describes
        layout.partition_file("AAPL", "stooq", 2023).write_bytes(b"broken")
    index_file.write_text(json.dumps(index))
    write_raw_lines(layout, "stooq", "AAPL", NEW_DAY, ts(1))
    calls = _spy_normalized(monkeypatch)
    process_symbol(layout, "stooq", "AAPL")
    assert calls[-1] == 2  # the full path re-normalized both raw files
    rows = {r["date"]: r for r in lake_io_read(layout.partition_file("AAPL", "stooq", 2023))}
    assert rows[dt.date(2023, 6, 1)]["close"] == 3.5 and len(rows) == sum(1 for d in DAYS if d.year == 2023)


def lake_io_read(path):
    import pyarrow.parquet as pq

    return pq.read_table(path).to_pylist()


def test_known_indexes_are_used_only_while_their_file_is_unchanged(data_dir):
    layout = DataLayout(data_dir)
    _raw(layout)
    staged = process_batch(layout, "stooq", workers=1, progress=False, keep_tables=True).staged
    path = str(lake_index.index_path(layout, "AAPL", "stooq"))
    key, index = staged.indexes[path]
    staged.indexes[path] = (key, {**index, "marker": True})
    seen = {str(p): i for p, i in lake_index.iter_indexes(layout, staged.indexes)}
    assert seen[path].get("marker") is True  # same file: not read again
    write_raw_lines(layout, "stooq", "AAPL", ["D,2023-06-01,1,2,0.5,1.5,,77"], ts(5))
    process_symbol(layout, "stooq", "AAPL")  # the index file is replaced
    seen = {str(p): i for p, i in lake_index.iter_indexes(layout, staged.indexes)}
    assert "marker" not in seen[path] and seen[path] == json.loads(Path(path).read_text())


def _shared_files() -> list[Path]:
    from cxq_data.shared_tables import PREFIX, shared_dir

    return sorted(shared_dir().glob(f"{PREFIX}*"))


def test_staged_tables_cross_to_the_parent_through_shared_memory_and_leave_nothing_behind(tmp_path):
    import gc
    import pickle

    from cxq_data.shared_tables import SharedTables

    before = _shared_files()
    tables = [pa.table({"symbol": ["A", "B"], "x": [1.5, None]}), pa.table({"symbol": ["C"], "x": [3.0]})]
    state = pickle.dumps(SharedTables(tables))
    assert len(state) < 300 and len(_shared_files()) == len(before) + 1  # a file name, not the data
    back = pickle.loads(state).tables
    gc.collect()  # the memory map was closed and its file unlinked: the tables still hold their pages
    assert [t.to_pydict() for t in back] == [t.to_pydict() for t in tables]
    assert _shared_files() == before
    mixed = [tables[0], pa.table({"y": [1]})]  # not one schema: the tables are pickled as they are
    assert [t.to_pydict() for t in pickle.loads(pickle.dumps(SharedTables(mixed))).tables] == \
        [t.to_pydict() for t in mixed]
    assert pickle.loads(pickle.dumps(SharedTables([]))).tables == []


def test_shared_files_of_a_killed_parent_are_removed_by_the_next_run(tmp_path):
    import os
    import subprocess
    import sys

    from cxq_data.shared_tables import PREFIX, remove_orphans

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    orphan, live, mine = (tmp_path / f"{PREFIX}{dead}-7-0.arrow", tmp_path / f"{PREFIX}1-7-0.arrow",
                          tmp_path / f"{PREFIX}{os.getpid()}-7-0.arrow")
    for path in (orphan, live, mine):
        path.write_bytes(b"x")
    assert remove_orphans(tmp_path) == 1
    assert not orphan.exists() and live.exists() and mine.exists()


def test_a_batch_on_workers_leaves_no_shared_memory_files(tmp_path, small_chunks):
    layout = DataLayout(tmp_path / "data")
    _raw(layout)
    before = _shared_files()
    result = process_batch(layout, "stooq", workers=2, progress=False, keep_tables=True)
    assert result.summary.ok and result.staged is not None and len(result.staged.tables) == 3  # 3 years
    assert _shared_files() == before


def test_without_room_in_shared_memory_the_tables_go_through_the_pipe(tmp_path, monkeypatch):
    """A container's /dev/shm is often 64 MB: a full one must make the run slower, not fail it."""
    import pickle

    from cxq_data import shared_tables

    monkeypatch.setattr(shared_tables, "shared_dir", lambda: tmp_path / "missing")  # every write fails
    tables = [pa.table({"symbol": ["A"] * 1000, "x": list(range(1000))})]
    state = pickle.dumps(shared_tables.SharedTables(tables))
    assert len(state) > 8000 and not (tmp_path / "missing").exists()
    assert pickle.loads(state).tables[0].equals(tables[0])
