"""``import_file(process=True)`` / ``cxq_data ingest import --process``: raw layer and lake in one pass.

The lake it writes must be exactly the lake that ``process`` writes from the raw layer alone (same
bytes, same indexes), each bulk member must be parsed once, and one bad member or symbol must not
stop the others.
"""

from __future__ import annotations

import datetime as dt
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from cxq_data.cli import cli
from cxq_data.ingest import bulk_import
from cxq_data.ingest.importer import import_file
from cxq_data.lake_batch import process_batch
from cxq_data.lake_index import read_index
from cxq_data.normalize import stooq
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse, list_raw, write_raw

HEADER = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"


def member(ticker: str, days: list[dt.date], base: float) -> str:
    rows = [f"{ticker},D,{d:%Y%m%d},000000,{base + i},{base + i + 1},{base + i - 1},{base + i + 0.5},{1000 + i},0\n"
            for i, d in enumerate(days)]
    return HEADER + "".join(rows)


def weekdays(start: dt.date, end: dt.date) -> list[dt.date]:
    days = (start + dt.timedelta(n) for n in range((end - start).days + 1))
    return [d for d in days if d.weekday() < 5]


HISTORY = weekdays(dt.date(2023, 11, 1), dt.date(2024, 2, 29))  # two years per symbol
NEW_DAY = [dt.date(2024, 3, 1)]


def bulk_zip(path: Path, days: list[dt.date], tickers: list[str], extra: dict[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for i, ticker in enumerate(tickers):
            archive.writestr(f"data/daily/us/nyse stocks/1/{ticker.lower()}.txt", member(ticker, days, 10.0 + i))
        for name, text in (extra or {}).items():
            archive.writestr(name, text)
    return path


def lake_bytes(layout: DataLayout) -> dict[str, bytes]:
    return {p.relative_to(layout.processed).as_posix(): p.read_bytes()
            for p in sorted(layout.processed.rglob("*")) if p.is_file()}


TICKERS = ["AAPL.US", "BRK-B.US", "MSFT.US"]


@pytest.fixture
def layout(data_dir: Path) -> DataLayout:
    return DataLayout(data_dir)


def test_one_pass_lake_equals_the_lake_processed_from_raw_alone(layout, tmp_path):
    history = bulk_zip(tmp_path / "d_us_txt.zip", HISTORY, TICKERS)
    summary = import_file(layout, history, "stooq", workers=1, process=True, keep_tables=True)
    assert summary.ok and summary.imported == ["AAPL", "BRK.B", "MSFT"]
    assert [r.status.value for r in summary.processed.summary.results] == ["written"] * 3
    one_pass = lake_bytes(layout)
    assert "symbol=BRK.B/source=stooq/year=2023/data.parquet" in one_pass
    assert "symbol=BRK.B/source=stooq/_index.json" in one_pass
    assert read_index(layout, "MSFT", "stooq")["daily"]["2024"]["rows"] == sum(d.year == 2024 for d in HISTORY)
    staged = summary.processed.staged
    assert staged is not None and staged.partition(("stooq", 2024), "AAPL", read_index(
        layout, "AAPL", "stooq")["daily"]["2024"]["sha256"]) is not None
    # the indexes handed to the serving build are exactly what a reader parses from disk
    assert len(staged.indexes) == 3
    assert all(json.loads(Path(path).read_text()) == index for path, (_, index) in staged.indexes.items())

    # a new day through the incremental (append) path, still in one pass
    day = bulk_zip(tmp_path / "day.zip", NEW_DAY, TICKERS)
    again = import_file(layout, day, "stooq", workers=1, process=True)
    assert [r.files_written for r in again.processed.summary.results] == [2, 2, 2]  # 2024 partition + index
    after_day = lake_bytes(layout)
    changed = {k for k in after_day if after_day[k] != one_pass.get(k)}
    assert changed == {f"symbol={s}/source=stooq/{f}" for s in ("AAPL", "BRK.B", "MSFT")
                       for f in ("year=2024/data.parquet", "_index.json")}

    # the raw layer alone rebuilds the very same bytes (nothing in the lake came from the shortcut)
    import shutil

    shutil.rmtree(layout.processed)
    assert process_batch(layout, "stooq", None, workers=1, progress=False).summary.ok
    assert lake_bytes(layout) == after_day


def test_each_member_is_parsed_once_in_one_pass_and_twice_in_two(layout, tmp_path, monkeypatch):
    calls: list[str] = []
    real = stooq.parse_stooq_bulk
    monkeypatch.setattr(stooq, "parse_stooq_bulk", lambda req: calls.append(req.name) or real(req))
    history = bulk_zip(tmp_path / "d_us_txt.zip", HISTORY, TICKERS)
    import_file(layout, history, "stooq", workers=1, process=True)
    assert len(calls) == 3
    calls.clear()
    other = DataLayout(tmp_path / "other")
    imported = import_file(other, history, "stooq", workers=1)
    process_batch(other, "stooq", imported.imported, workers=1, progress=False)
    assert len(calls) == 6


def test_worker_processes_commit_every_index_once_all_chunks_are_written(layout, tmp_path, monkeypatch):
    monkeypatch.setattr(bulk_import, "CHUNK_MEMBERS", 2)  # 7 symbols -> 4 chunks over 2 workers
    tickers = [f"T{i}.US" for i in range(7)]
    summary = import_file(layout, bulk_zip(tmp_path / "d.zip", HISTORY, tickers), "stooq", workers=2, process=True)
    assert summary.ok and len(summary.processed.summary.results) == 7
    for i in range(7):
        index = read_index(layout, f"T{i}", "stooq")
        assert index is not None and sorted(index["daily"]) == ["2023", "2024"]
        assert index["raw"][0]["file"] == list_raw(layout, "stooq", f"T{i}")[0].path.relative_to(layout.root).as_posix()


def test_a_symbol_that_fails_processing_does_not_stop_the_others(layout, tmp_path):
    broken = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\nMSFT.US,D,2023010,0,1,1,1,1,1,0\n"
    write_raw(layout, RawResponse("stooq", "MSFT", broken.encode(), "txt", http_status=None,
                                  fetched_at=dt.datetime(2023, 1, 1, tzinfo=dt.UTC), extra={"format": "stooq_bulk_txt"}))
    summary = import_file(layout, bulk_zip(tmp_path / "d.zip", HISTORY, TICKERS), "stooq", workers=1, process=True)
    status = {r.symbol: (r.status.value, r.reason) for r in summary.processed.summary.results}
    assert status["AAPL"][0] == status["BRK.B"][0] == "written"
    assert status["MSFT"][0] == "failed" and "<DATE>" in status["MSFT"][1]
    assert not summary.ok and summary.imported == ["AAPL", "BRK.B", "MSFT"]  # the new raw file is kept
    assert not (layout.processed / "symbol=MSFT").exists()


def test_cli_import_process_builds_lake_serving_and_views(data_dir, tmp_path):
    src = bulk_zip(tmp_path / "d_us_txt.zip", HISTORY, TICKERS[:2], extra={
        "data/daily/us/nyse stocks/1/bad.us.txt": HEADER + "BAD.US,D,20240606,000000,1,2,0.5,??,7,0\n"})
    run = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "ingest", "import", "--source", "stooq", "--process",
                                   "--workers", "1", "--no-progress", "--format", "json", str(src)])
    assert run.exit_code == 1  # the broken member; the others are imported, processed and served
    doc = json.loads(run.stdout)
    assert doc["symbols"] == ["AAPL", "BRK.B"] and doc["processed"] == {"written": 2, "unchanged": 0, "failed": []}
    assert "processed 2 symbol(s): 2 written" in run.stderr and f"serving daily: 2 file(s), {2 * len(HISTORY)} rows" in run.stderr
    latest = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "query", "latest", "--symbol", "BRK.B",
                                      "--rows", "1", "--format", "json"])
    assert latest.exit_code == 0, latest.output
    [row] = json.loads(latest.stdout)
    assert row["date"] == HISTORY[-1].isoformat() and row["close"] == 11.0 + len(HISTORY) - 1 + 0.5

    again = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "ingest", "import", "--source", "stooq",
                                     "--process", "--workers", "1", "--no-progress", str(src)])
    assert "processed 2 symbol(s): 0 written, 2 unchanged" in again.stderr


def test_help_explains_process():
    text = CliRunner().invoke(cli, ["ingest", "import", "--help"]).output
    assert "--process" in text and "parsed once" in " ".join(text.split())


def test_cli_single_csv_with_process_is_queryable(data_dir, tmp_path):
    src = tmp_path / "aapl.csv"
    src.write_text("Date,Open,High,Low,Close,Volume\n2024-06-06,195.69,196.5,194.17,194.48,41181800\n")
    run = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "ingest", "import", "--source", "stooq",
                                   "--symbol", "AAPL", "--process", str(src)])
    assert run.exit_code == 0, run.output
    assert "processed 1 symbol(s): 1 written" in run.stderr
    latest = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "query", "latest", "--symbol", "AAPL",
                                      "--format", "json"])
    assert [(r["date"], r["close"]) for r in json.loads(latest.stdout)] == [("2024-06-06", 194.48)]
