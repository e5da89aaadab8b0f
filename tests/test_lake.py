"""The processed lake writer: deterministic partitions, latest fetch wins, stale years removed, index last."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow.parquet as pq
import pytest
from lake_support import (  # noqa: F401 (fixture)
    synthetic_bars,
    test_normalizer,
    trading_days,
    tree_state,
    ts,
    write_raw_lines,
)

from cxq_data import lake, lake_index
from cxq_data.errors import RawLayerError
from cxq_data.lake import Status, process, process_symbol
from cxq_data.lake_io import sha256_hex
from cxq_data.paths import DataLayout
from cxq_data.schema import PARTITION_SCHEMA

pytestmark = pytest.mark.usefixtures("test_normalizer")

DAYS = trading_days(dt.date(2021, 1, 1), dt.date(2023, 12, 31))


@pytest.fixture
def layout(data_dir) -> DataLayout:
    return DataLayout(data_dir)


def _read(layout: DataLayout, symbol: str, source: str, year: int):
    return pq.read_table(layout.partition_file(symbol, source, year))


def test_partitions_are_split_by_year_sorted_and_typed(layout):
    lines = synthetic_bars("AAPL", DAYS)
    write_raw_lines(layout, "yfinance", "AAPL", list(reversed(lines)), ts(0))  # unsorted input
    result = process_symbol(layout, "yf", "aapl")
    assert (result.symbol, result.source, result.status) == ("AAPL", "yfinance", Status.WRITTEN)
    assert result.years == [2021, 2022, 2023] and result.rows == len(DAYS)
    for year in (2021, 2022, 2023):
        table = _read(layout, "AAPL", "yfinance", year)
        assert table.schema.equals(PARTITION_SCHEMA)
        dates = table.column("date").to_pylist()
        assert dates == sorted(dates) and {d.year for d in dates} == {year}
        assert dates == [d for d in DAYS if d.year == year]
    md = pq.ParquetFile(layout.partition_file("AAPL", "yfinance", 2022)).metadata
    assert md.row_group(0).column(1).compression == "ZSTD"
    dates_2022 = [d for d in DAYS if d.year == 2022]
    stats = md.row_group(0).column(0).statistics  # date: min/max kept (readers prune files by date)
    assert (stats.min, stats.max) == (dates_2022[0], dates_2022[-1])
    assert md.metadata is None or b"ARROW:schema" not in md.metadata  # types come from Parquet alone


def test_second_run_keeps_bytes_and_mtimes(layout):
    write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS) + ["A,2022-03-01,0.25,"], ts(0))
    process_symbol(layout, "yfinance", "AAPL")
    before = tree_state(layout.processed)
    again = process_symbol(layout, "yfinance", "AAPL")
    assert again.status is Status.UNCHANGED and again.files_written == 0
    assert tree_state(layout.processed) == before  # same bytes and same mtimes, index included


def test_rerun_of_an_up_to_date_pair_skips_normalizing_but_repairs_missing_files(layout, monkeypatch):
    write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    process_symbol(layout, "yfinance", "AAPL")
    before = tree_state(layout.processed)
    calls = []
    real = lake._normalize_records
    monkeypatch.setattr(lake, "_normalize_records", lambda records, parsed=None: calls.append(len(records)) or real(records, parsed))
    again = process_symbol(layout, "yfinance", "AAPL")
    assert calls == [] and again.status is Status.UNCHANGED and again.files_unchanged == 4  # 3 years + index
    assert tree_state(layout.processed) == before
    # A partition that is gone or no longer the size the index records is not trusted: full rebuild.
    gone = layout.partition_file("AAPL", "yfinance", 2022)
    original = gone.read_bytes()
    gone.unlink()
    repaired = process_symbol(layout, "yfinance", "AAPL")
    assert calls == [1] and repaired.status is Status.WRITTEN and gone.read_bytes() == original
    gone.write_bytes(original[:-7])
    process_symbol(layout, "yfinance", "AAPL")
    assert calls == [1, 1] and gone.read_bytes() == original
    # A new raw file is not "up to date" either.
    write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", [dt.date(2024, 1, 2)]), ts(5))
    assert process_symbol(layout, "yfinance", "AAPL").years == [2021, 2022, 2023, 2024]


def test_appending_a_fetch_reads_only_the_new_manifest_and_equals_a_full_rebuild(layout, tmp_path, monkeypatch):
    from cxq_data import raw

    for i, year_days in enumerate([DAYS[:200], DAYS[200:400], DAYS[400:600], DAYS[600:]]):
        write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", year_days), ts(i))
    process_symbol(layout, "yfinance", "AAPL")
    newest = write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS[-5:], version=1), ts(9))
    read = []
    real = raw.read_manifest
    monkeypatch.setattr(raw, "read_manifest", lambda path: read.append(path.name) or real(path))
    result = process_symbol(layout, "yfinance", "AAPL")
    assert read == [newest.path.name] and result.status is Status.WRITTEN  # old manifests not read again
    index = json.loads(lake_index.index_path(layout, "AAPL", "yfinance").read_text())
    assert [e["file"].rsplit("/", 1)[-1] for e in index["raw"]][-1] == newest.path.name and len(index["raw"]) == 5
    # the incremental result is byte-identical to processing the same raw files from scratch
    fresh = DataLayout(tmp_path / "fresh")
    import shutil

    shutil.copytree(layout.raw, fresh.raw)
    process_symbol(fresh, "yfinance", "AAPL")
    for year in (2021, 2022, 2023):
        assert fresh.partition_file("AAPL", "yfinance", year).read_bytes() == \
            layout.partition_file("AAPL", "yfinance", year).read_bytes()


def test_same_input_gives_identical_bytes_in_another_data_dir(tmp_path):
    states = []
    for name in ("one", "two"):
        layout = DataLayout(tmp_path / name)
        write_raw_lines(layout, "stooq", "MSFT", synthetic_bars("MSFT", DAYS), ts(3))
        process_symbol(layout, "stooq", "MSFT")
        states.append({k: v[0] for k, v in tree_state(layout.processed).items()})
    assert states[0] == states[1] and len(states[0]) == 4  # 3 years + index


def test_latest_fetch_wins_and_only_changed_years_are_rewritten(layout):
    write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    process_symbol(layout, "yfinance", "AAPL")
    before = tree_state(layout.processed)
    # A later fetch restates two 2023 dates only.
    write_raw_lines(layout, "yfinance", "AAPL",
                    ["D,2023-06-01,1,2,0.5,1.5,,77", "D,2023-06-02,1,2,0.5,1.25,1.2,88"], ts(5))
    result = process_symbol(layout, "yfinance", "AAPL")
    assert result.status is Status.WRITTEN
    after = tree_state(layout.processed)
    for year in (2021, 2022):
        key = f"symbol=AAPL/source=yfinance/year={year}/data.parquet"
        assert after[key] == before[key]  # untouched: same bytes, same mtime
    table = _read(layout, "AAPL", "yfinance", 2023).to_pylist()
    by_date = {r["date"]: r for r in table}
    assert by_date[dt.date(2023, 6, 1)]["close"] == 1.5 and by_date[dt.date(2023, 6, 1)]["volume"] == 77
    assert by_date[dt.date(2023, 6, 1)]["adjusted_close"] is None
    assert by_date[dt.date(2023, 6, 2)]["ingested_at"] == ts(5)
    assert by_date[dt.date(2023, 6, 5)]["ingested_at"] == ts(0)  # older fetch still supplies other dates
    assert len(table) == sum(1 for d in DAYS if d.year == 2023)


def test_years_that_disappear_are_removed(layout, monkeypatch):
    write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    process_symbol(layout, "yfinance", "AAPL")
    # The normalizer (e.g. after a fix) now yields only 2023: the 2021/2022 partitions must go.
    from cxq_data import normalize

    real = normalize.merge_latest

    def only_2023(parts):
        merged = real(parts)
        import pyarrow.compute as pc

        keep = pc.equal(pc.year(merged.bars["date"]), 2023)
        return type(merged)(merged.bars.filter(keep), merged.actions)

    monkeypatch.setattr(normalize, "merge_latest", only_2023)
    result = process_symbol(layout, "yfinance", "AAPL")
    assert result.files_removed == 2 and result.years == [2023]
    base = layout.symbol_source_dir("AAPL", "yfinance")
    assert sorted(p.name for p in base.iterdir()) == ["_index.json", "year=2023"]
    index = json.loads((base / "_index.json").read_text())
    assert list(index["daily"]) == ["2023"]


def test_index_describes_files_and_raw_inputs(layout):
    rec1 = write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    rec2 = write_raw_lines(layout, "yfinance", "AAPL", ["A,2022-05-02,,4.0"], ts(1))
    process_symbol(layout, "yfinance", "AAPL")
    text = lake_index.index_path(layout, "AAPL", "yfinance").read_text()
    index = json.loads(text)
    assert text == json.dumps(index, sort_keys=True, separators=(",", ":"), ensure_ascii=False) + "\n"  # canonical
    for year, entry in index["daily"].items():
        data = (layout.root / entry["file"]).read_bytes()
        assert entry["sha256"] == sha256_hex(data) and entry["bytes"] == len(data)
        assert entry["min"].startswith(year) and entry["max"].startswith(year)
    assert index["daily"]["2022"]["rows"] == sum(1 for d in DAYS if d.year == 2022)
    assert [r["sha256"] for r in index["raw"]] == [rec1.sha256, rec2.sha256]
    assert index["raw"][0]["file"].startswith("raw/yfinance/AAPL/daily/")
    assert index["actions"]["rows"] == 1
    actions = pq.read_table(lake.actions_file(layout, "AAPL", "yfinance")).to_pylist()
    assert actions[0]["split_ratio"] == 4.0 and actions[0]["dividend"] is None
    assert "fetched" not in text and "now" not in text  # no run timestamps: same content, same bytes


def test_intraday_goes_to_its_own_dataset_without_touching_daily(layout):
    write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    process_symbol(layout, "yfinance", "AAPL")
    daily_before = {k: v for k, v in tree_state(layout.processed).items() if "/year=" in k}
    lines = [f"I,2025-01-0{d}T{h}:30:00+00:00,1,2,0.5,1.5,{d * 100 + h}" for d in (2, 3) for h in (14, 15)]
    write_raw_lines(layout, "yfinance", "AAPL", lines, ts(9), kind="intraday-5m")
    result = process_symbol(layout, "yfinance", "AAPL")
    after = tree_state(layout.processed)
    assert {k: v for k, v in after.items() if "/year=" in k} == daily_before
    day_file = lake.intraday_file(layout, "5m", "AAPL", "yfinance", dt.date(2025, 1, 3))
    rows = pq.read_table(day_file).to_pylist()
    assert [r["volume"] for r in rows] == [314, 315]
    assert result.years == [2021, 2022, 2023]
    index = json.loads(lake_index.index_path(layout, "AAPL", "yfinance").read_text())
    assert sorted(index["intraday"]["5m"]) == ["2025-01-02", "2025-01-03"]


def test_one_bad_symbol_does_not_stop_the_others(layout):
    write_raw_lines(layout, "stooq", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    write_raw_lines(layout, "stooq", "BAD", ["D,2023-13-45,1,2,3,4,,5"], ts(0))
    write_raw_lines(layout, "stooq", "MSFT", synthetic_bars("MSFT", DAYS), ts(0))
    summary = process(layout, "stooq", progress=False)
    status = {r.symbol: r.status for r in summary.results}
    assert status == {"AAPL": Status.WRITTEN, "BAD": Status.FAILED, "MSFT": Status.WRITTEN}
    assert not summary.ok and summary.count_failed == 1
    bad = next(r for r in summary.results if r.symbol == "BAD")
    assert "raw/stooq/BAD/daily/" in bad.reason and "month must be in 1..12" in bad.reason
    assert not layout.symbol_source_dir("BAD", "stooq").exists()  # nothing half written
    assert layout.partition_file("MSFT", "stooq", 2023).is_file()


def test_symbol_without_raw_files_is_an_error_naming_it(layout):
    with pytest.raises(RawLayerError, match="yfinance/NOPE"):
        process_symbol(layout, "yfinance", "NOPE")
    summary = process(layout, "yfinance", ["NOPE", "../x"], progress=False)
    assert [r.status for r in summary.results] == [Status.FAILED, Status.FAILED]
    assert "invalid symbol" in summary.results[1].reason


def test_duplicate_dates_from_a_normalizer_are_refused(layout, monkeypatch):
    from cxq_data import normalize

    write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS[:5]), ts(0))
    monkeypatch.setattr(normalize, "merge_latest", lambda parts: type(parts[0])(
        __import__("pyarrow").concat_tables([parts[0].bars, parts[0].bars]), parts[0].actions))
    with pytest.raises(ValueError, match="duplicate date"):
        process_symbol(layout, "yfinance", "AAPL")
    assert not layout.symbol_source_dir("AAPL", "yfinance").exists()


def test_lake_summary_counts_from_indexes(layout):
    write_raw_lines(layout, "yfinance", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    write_raw_lines(layout, "yfinance", "MSFT", synthetic_bars("MSFT", DAYS[:10]), ts(0))
    write_raw_lines(layout, "stooq", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    process(layout, "yfinance", progress=False)
    process(layout, "stooq", progress=False)
    rows = {r["source"]: r for r in lake_index.lake_summary(layout)}
    assert rows["yfinance"]["symbols"] == 2 and rows["yfinance"]["rows"] == len(DAYS) + 10
    assert rows["yfinance"]["partitions"] == 4 and rows["stooq"]["partitions"] == 3
    assert (rows["stooq"]["first_year"], rows["stooq"]["last_year"]) == (2021, 2023)
    on_disk = sum(p.stat().st_size for p in layout.processed.glob("symbol=*/source=stooq/year=*/data.parquet"))
    assert rows["stooq"]["bytes"] == on_disk
