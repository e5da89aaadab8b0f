"""Serving layer: immutable content-named files, incremental rebuilds, manifest swap, grace-period deletes."""

from __future__ import annotations

import datetime as dt

import pyarrow.parquet as pq
import pytest
from lake_support import synthetic_bars, test_normalizer, trading_days, ts, write_raw_lines  # noqa: F401

from cxq_data.lake import process
from cxq_data.lake_io import sha256_hex
from cxq_data.paths import DataLayout
from cxq_data.serving import build_serving, manifest_files, read_manifest

pytestmark = pytest.mark.usefixtures("test_normalizer")

DAYS = trading_days(dt.date(2022, 1, 1), dt.date(2023, 12, 31))
SYMBOLS = ["MSFT", "AAPL", "BRK.B"]


def _lake(layout: DataLayout, version: int = 0) -> None:
    for source in ("yfinance", "stooq"):
        for sym in SYMBOLS:
            write_raw_lines(layout, source, sym, synthetic_bars(sym + source, DAYS, version), ts(version))
        write_raw_lines(layout, source, "AAPL", ["A,2022-08-01,0.23,", "A,2023-02-01,,3.0"], ts(version))
        assert process(layout, source, progress=False).ok


def _files(layout: DataLayout, dataset: str = "daily") -> dict[str, str]:
    return {f["path"]: f["sha256"] for f in read_manifest(layout, dataset)["files"]}


@pytest.fixture
def layout(data_dir) -> DataLayout:
    layout = DataLayout(data_dir)
    _lake(layout)
    return layout


def test_one_sorted_file_per_source_year_with_the_lake_rows(layout):
    summary = build_serving(layout)
    daily = next(d for d in summary.datasets if d.dataset == "daily")
    assert (daily.files, daily.rebuilt, daily.rows) == (4, 4, len(DAYS) * 3 * 2)
    manifest = read_manifest(layout, "daily")
    assert sorted((f["source"], f["year"]) for f in manifest["files"]) == [
        ("stooq", 2022), ("stooq", 2023), ("yfinance", 2022), ("yfinance", 2023)]
    for f in manifest["files"]:
        path = layout.serving_dataset("daily") / f["path"]
        assert path.name == f"part-{f['sha256'][:20]}.parquet" and sha256_hex(path.read_bytes()) == f["sha256"]
        table = pq.read_table(path, partitioning=None)
        columns = pq.ParquetFile(path).metadata.row_group(0)
        encodings = {columns.column(i).path_in_schema: columns.column(i).encodings for i in range(columns.num_columns)}
        assert "RLE_DICTIONARY" in encodings["symbol"] and "RLE_DICTIONARY" not in encodings["close"]
        keys = list(zip(table.column("symbol").to_pylist(), table.column("date").to_pylist()))
        assert keys == sorted(keys) and len(keys) == f["rows"] == f["symbols"] * sum(
            1 for d in DAYS if d.year == f["year"])
        lake_rows = pq.read_table(layout.partition_file("BRK.B", f["source"], f["year"])).to_pylist()
        served = [r for r in table.to_pylist() if r.pop("symbol") == "BRK.B"]
        assert served == lake_rows
    actions = read_manifest(layout, "actions")["files"]
    assert [(f["source"], f["rows"]) for f in actions] == [("stooq", 2), ("yfinance", 2)]


def test_same_input_gives_same_serving_names_and_bytes(tmp_path):
    built = []
    for name in ("a", "b"):
        layout = DataLayout(tmp_path / name)
        _lake(layout)
        build_serving(layout)
        built.append({p.relative_to(layout.serving).as_posix(): p.read_bytes()
                      for p in layout.serving.rglob("*.parquet")})
    assert built[0] == built[1] and len(built[0]) == 4 + 2


def test_unchanged_lake_rebuilds_nothing_and_keeps_the_manifest(layout):
    build_serving(layout)
    manifest = layout.serving_dataset("daily") / "manifest.json"
    before = (manifest.read_bytes(), manifest.stat().st_mtime_ns)
    mtimes = {p: p.stat().st_mtime_ns for p in manifest_files(layout, "daily")}
    summary = build_serving(layout)
    assert all(d.rebuilt == 0 and not d.manifest_changed for d in summary.datasets)
    assert (manifest.read_bytes(), manifest.stat().st_mtime_ns) == before
    assert {p: p.stat().st_mtime_ns for p in manifest_files(layout, "daily")} == mtimes


def test_only_changed_groups_are_rebuilt_and_old_files_retire_then_go(layout):
    t0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    build_serving(layout, now=t0)
    old = _files(layout)
    write_raw_lines(layout, "yfinance", "MSFT", ["D,2023-12-29,1,2,0.5,1.5,,5"], ts(40))
    process(layout, "yfinance", ["MSFT"], progress=False)
    summary = build_serving(layout, now=t0 + dt.timedelta(seconds=10), grace_seconds=600)
    daily = next(d for d in summary.datasets if d.dataset == "daily")
    assert (daily.rebuilt, daily.unchanged, daily.retired, daily.deleted) == (1, 3, 1, 0)
    new = _files(layout)
    changed = [p for p in new if p not in old]
    assert len(changed) == 1 and changed[0].startswith("source=yfinance/year=2023/")
    gone = next(p for p in old if p not in new)
    retired = read_manifest(layout, "daily")["retired"]
    assert retired == [{"path": gone, "retired_at": "2026-01-01T00:00:10Z"}]
    assert (layout.serving_dataset("daily") / gone).exists()  # a running query may still read it
    # Before the grace period ends the file stays; after it, it is deleted and forgotten.
    build_serving(layout, now=t0 + dt.timedelta(seconds=300), grace_seconds=600)
    assert (layout.serving_dataset("daily") / gone).exists()
    summary = build_serving(layout, now=t0 + dt.timedelta(seconds=611), grace_seconds=600)
    assert next(d for d in summary.datasets if d.dataset == "daily").deleted == 1
    assert not (layout.serving_dataset("daily") / gone).exists()
    assert read_manifest(layout, "daily")["retired"] == []
    served = pq.read_table(layout.serving_dataset("daily") / changed[0], partitioning=None).to_pylist()
    row = next(r for r in served if r["symbol"] == "MSFT" and r["date"] == dt.date(2023, 12, 29))
    assert row["close"] == 1.5 and row["volume"] == 5


def test_a_truncated_serving_file_is_rebuilt_not_trusted(layout):
    """It was counted as unchanged because it existed: every query then failed until removed by hand."""
    build_serving(layout)
    before = {p: p.read_bytes() for p in manifest_files(layout, "daily")}
    damaged = sorted(before)[1]
    damaged.write_bytes(before[damaged][: len(before[damaged]) // 2])
    summary = build_serving(layout)
    daily = next(d for d in summary.datasets if d.dataset == "daily")
    assert (daily.rebuilt, daily.unchanged) == (1, 3)
    assert {p: p.read_bytes() for p in manifest_files(layout, "daily")} == before  # same name, whole again


def test_a_damaged_manifest_is_a_clear_error_for_readers_and_rebuilt_by_the_builder(layout):
    from cxq_data.errors import StateFileError

    build_serving(layout)
    files = _files(layout)
    manifest = layout.serving_dataset("daily") / "manifest.json"
    good = manifest.read_bytes()
    manifest.write_text('{"files": [')
    with pytest.raises(StateFileError, match=r"manifest.json: damaged serving manifest .*process serve"):
        manifest_files(layout, "daily")
    build_serving(layout)
    assert _files(layout) == files and manifest.read_bytes() == good


def test_orphans_and_temp_files_of_a_crashed_build_are_cleaned(layout):
    build_serving(layout)
    folder = layout.serving_dataset("daily") / "source=stooq" / "year=2022"
    orphan = folder / "part-deadbeef.parquet"
    orphan.write_bytes(b"half")
    temp = folder / ".tmp-part-x.parquet.123.partial"
    temp.write_bytes(b"junk")
    build_serving(layout, grace_seconds=0)
    assert not orphan.exists() and not temp.exists()
    assert len(manifest_files(layout, "daily")) == 4 and all(p.exists() for p in manifest_files(layout, "daily"))


def test_temp_names_never_match_parquet_globs(layout, monkeypatch):
    from cxq_data import atomic

    seen = []
    real = atomic.atomic_path

    def spy(dest, **kw):
        cm = real(dest, **kw)
        tmp = cm.__enter__()
        seen.append(tmp.name)
        return _Wrapped(cm, tmp)

    class _Wrapped:
        def __init__(self, cm, tmp):
            self.cm, self.tmp = cm, tmp

        def __enter__(self):
            return self.tmp

        def __exit__(self, *exc):
            return self.cm.__exit__(*exc)

    monkeypatch.setattr(atomic, "atomic_path", spy)
    build_serving(layout)
    assert seen and not [n for n in seen if n.endswith((".parquet", ".json"))]


def test_restated_history_replaces_every_group_and_retires_all_old_files(layout):
    build_serving(layout)
    first = _files(layout)
    _lake(layout, version=1)
    summary = build_serving(layout)
    assert next(d for d in summary.datasets if d.dataset == "daily").rebuilt == 4
    manifest = read_manifest(layout, "daily")
    second = {f["path"] for f in manifest["files"]}
    assert second.isdisjoint(first) and len(second) == 4
    assert sorted(r["path"] for r in manifest["retired"]) == sorted(first)
    assert manifest["keys"] == ["source", "year"]


def test_intraday_is_served_outside_the_daily_file_set(layout):
    lines = ["I,2025-01-02T14:30:00+00:00,1,2,0.5,1.5,10", "I,2025-01-02T14:35:00+00:00,1,2,0.5,1.6,20"]
    write_raw_lines(layout, "yfinance", "AAPL", lines, ts(50), kind="intraday-5m")
    process(layout, "yfinance", ["AAPL"], progress=False)
    build_serving(layout)
    daily = manifest_files(layout, "daily")
    intraday = read_manifest(layout, "intraday")["files"]
    assert [(f["interval"], f["source"], f["year"], f["rows"]) for f in intraday] == [("5m", "yfinance", 2025, 2)]
    assert all("intraday" not in p.relative_to(layout.root).as_posix() for p in daily) and len(daily) == 4
