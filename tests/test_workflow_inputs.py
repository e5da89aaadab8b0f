"""Snakemake input helpers that keep a 10,000-job DAG cheap: the per-source code stamp and raw listing."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from cxq_data import workflow
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse, raw_data_files, write_raw


@pytest.fixture
def fake_code(tmp_path, monkeypatch) -> list[Path]:
    files = []
    for i, name in enumerate(("base.py", "stooq.py")):
        path = tmp_path / "code" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"VERSION = 1  # of {name}\n")
        os.utime(path, ns=(10**18 + i, 10**18 + i))  # "old" code: 2001
        files.append(path)
    monkeypatch.setattr(workflow, "code_inputs", lambda source: [str(p) for p in files])
    return files


def test_code_stamp_is_as_old_as_the_code_and_moves_only_when_the_code_changes(tmp_path, fake_code):
    layout = DataLayout(tmp_path / "data")
    stamp = Path(workflow.code_stamp(layout, "stooq"))
    first = stamp.read_text()
    assert stamp.stat().st_mtime_ns == 10**18 + 1  # newest code file: an existing lake stays up to date
    os.utime(fake_code[0], None)  # touched, same content (e.g. a checkout): no rerun
    workflow.code_stamp(layout, "stooq")
    assert stamp.read_text() == first and stamp.stat().st_mtime_ns == 10**18 + 1
    fake_code[0].write_text("VERSION = (\n    1\n)\n\n# reflowed, commented: the same code, no rerun\n")
    workflow.code_stamp(layout, "stooq")
    assert stamp.read_text() == first and stamp.stat().st_mtime_ns == 10**18 + 1
    fake_code[0].write_text("VERSION = 2\n")  # a real change: the stamp changes and is new
    workflow.code_stamp(layout, "stooq")
    assert stamp.read_text() != first and stamp.stat().st_mtime_ns == fake_code[0].stat().st_mtime_ns


def test_index_code_tag_follows_the_code_not_its_comments(fake_code):
    from cxq_data import lake_append

    def tag() -> str:
        lake_append._code_files_digest.cache_clear()
        return lake_append.code_tag("stooq")

    first = tag()
    fake_code[1].write_text(fake_code[1].read_text() + "# a lint fix removed a noqa here\n")
    assert tag() == first  # existing lakes keep their incremental path
    fake_code[1].write_text('VERSION = 1\n"""A docstring is part of the code."""\n')
    assert tag() != first
    lake_append._code_files_digest.cache_clear()


def test_code_digest_names_a_file_that_does_not_parse(fake_code):
    fake_code[0].write_text("def broken(:\n")
    with pytest.raises(SyntaxError, match="base.py"):
        workflow.code_digest("stooq")


def test_raw_inputs_are_the_kind_folders_whose_mtime_moves_with_each_new_fetch(tmp_path):
    layout = DataLayout(tmp_path / "data")

    def fetch(day: int, kind: str = "daily") -> None:
        write_raw(layout, RawResponse(source="stooq", symbol="AAPL", body=f"x{day}".encode(), ext="csv",
                                      kind=kind, fetched_at=dt.datetime(2025, 1, day, tzinfo=dt.UTC)))

    fetch(1)
    fetch(2, kind="intraday-5m")
    daily = layout.raw_dir("stooq", "AAPL")
    assert workflow.raw_inputs(layout, "stooq", "AAPL") == [str(daily), str(layout.raw_dir("stooq", "AAPL", "intraday-5m"))]
    os.utime(daily, ns=(10**18, 10**18))  # as if the last fetch was long ago
    fetch(3)  # a new raw file is renamed into the folder: the folder is now newer than any old output
    assert daily.stat().st_mtime_ns > 10**18
    assert len(raw_data_files(layout, "stooq", "AAPL")) == 2
    assert workflow.raw_inputs(layout, "stooq", "NONE") == []


def test_buckets_are_stable_and_cover_every_pair():
    pairs = [("stooq", f"S{i}") for i in range(300)] + [("yfinance", "AAPL"), ("yfinance", "BRK.B")]
    got = workflow.buckets(pairs)
    assert sorted((src, sym) for (src, _), syms in got.items() for sym in syms) == sorted(pairs)
    assert all(b == workflow.bucket_of(sym) for (_, b), syms in got.items() for sym in syms)
    assert workflow.bucket_of("AAPL") == workflow.bucket_of("AAPL") == zlib_bucket("AAPL")
    assert max(len(s) for (src, _), s in got.items() if src == "stooq") < 300 / workflow.N_BUCKETS * 2


def zlib_bucket(symbol: str) -> int:
    import zlib

    return zlib.crc32(symbol.encode()) % workflow.N_BUCKETS


def test_process_bucket_keeps_good_symbols_and_names_the_failed_one(tmp_path):
    import json

    from cxq_data.errors import CxqError
    from cxq_data.ingest.importer import import_file
    from cxq_data.lake_index import read_index
    from cxq_data.workflow_report import check_run

    layout = DataLayout(tmp_path / "data")
    good = tmp_path / "good.csv"
    good.write_text("Date,Open,High,Low,Close,Volume\n2024-01-02,10,11,9,10.5,100\n2024-01-03,10,11,9,10.7,120\n")
    import_file(layout, good, "stooq", "AAA")
    out = tmp_path / "bucket.json"
    workflow.process_bucket(str(layout.root), "stooq", ["AAA"], out)
    bucket = json.loads(out.read_text())
    assert bucket == {"indexes": {"symbol=AAA/source=stooq": read_index(layout, "AAA", "stooq")}}
    part = layout.partition_file("AAA", "stooq", 2024)
    before = part.stat().st_mtime_ns
    workflow.process_bucket(str(layout.root), "stooq", ["AAA", "ZZZ"], out)  # the job itself succeeds ...
    bucket = json.loads(out.read_text())
    assert list(bucket["indexes"]) == ["symbol=AAA/source=stooq"]
    assert "no raw files" in bucket["failed"]["ZZZ"]  # ... and records the failure for the run's report
    assert part.stat().st_mtime_ns == before and read_index(layout, "AAA", "stooq")  # the good one is kept
    with pytest.raises(CxqError, match=r"1 failure\(s\).*\n  process ZZZ: stooq/ZZZ: no raw files"):
        check_run([out], tmp_path / "report.json")
    assert not (tmp_path / "report.json").exists()
    assert not out.exists()  # the next run processes the bucket again (ZZZ may have raw data by then)


def test_code_inputs_cover_every_format_a_source_can_hold():
    """A user source may hold Stooq bulk members: a Stooq parser fix must rebuild it too."""
    names = lambda source: {Path(p).name for p in workflow.code_inputs(source)}
    assert {"stooq.py", "csvfile.py", "lake.py", "base.py"} <= names("my_broker")
    assert "stooq.py" in names("stooq") and "yahoo.py" not in names("stooq")
    assert "yahoo.py" in names("yfinance")


@pytest.mark.parametrize(("universe", "message"), [
    ({"sources": ["yahooo"]}, r"universe.sources: 'yahooo' is not a provider the workflow fetches from"),
    ({"start": "2023-13-45"}, r"universe.start: '2023-13-45' is not a date YYYY-MM-DD"),
    ({"start": "2025-01-01", "end": "2024-01-01"}, r"universe.start 2025-01-01 is after universe.end 2024-01-01"),
])
def test_config_values_the_schema_lets_through_are_errors_naming_their_key(tmp_path, universe, message):
    """An unknown source was silently dropped (nothing fetched, exit 0); a bad date failed every fetch job."""
    from cxq_data.errors import ConfigError

    config = {"data_dir": str(tmp_path), "universe": {"symbols": ["AAPL"], "sources": ["stooq"], **universe}}
    with pytest.raises(ConfigError, match=message):
        workflow.WorkflowConfig.from_mapping(config)
    ok = workflow.WorkflowConfig.from_mapping({"universe": {"symbols": ["aapl"], "sources": ["YF", "stooq"]}})
    assert (ok.symbols, ok.sources) == (["AAPL"], ["yfinance", "stooq"])


def test_an_unknown_exchange_calendar_fails_when_the_config_is_read(tmp_path):
    """A typo in default_exchange used to pass the whole ingest and fail only in every validate job."""
    from cxq_data.errors import ConfigError
    from cxq_data.quality.validate import ValidationConfig

    config = {"data_dir": str(tmp_path), "universe": {"symbols": ["AAPL"], "sources": ["stooq"]}}
    with pytest.raises(ConfigError, match=r"default_exchange: unknown exchange calendar 'XNYSE'"):
        workflow.WorkflowConfig.from_mapping({**config, "default_exchange": "XNYSE"})
    assert workflow.WorkflowConfig.from_mapping({**config, "default_exchange": "XLON"}).default_exchange == "XLON"
    assert workflow.WorkflowConfig.from_mapping(config).default_exchange == "XNYS"
    with pytest.raises(ConfigError, match=r"exchanges.VOD: unknown exchange calendar 'LONDON'"):
        ValidationConfig.from_mapping({"exchanges": {"VOD": "LONDON"}})


def test_options_dates_that_are_not_calendar_days_name_the_key(tmp_path):
    from cxq_data.errors import ConfigError
    from cxq_data.options.pipeline import planned_dates

    with pytest.raises(ConfigError, match=r"options.dates: date '2025-02-30' is not a calendar date"):
        planned_dates(DataLayout(tmp_path), {"dates": ["2025-02-30"]})


def test_validation_report_fails_like_the_cli_when_a_series_has_an_error_finding(tmp_path):
    """`make validate` exited 0 although its reports held error findings (`validate run` exits 1)."""
    import json

    from cxq_data.errors import CxqError
    from cxq_data.workflow_report import check_validation

    def finding(symbol, check, severity):
        return {"symbol": symbol, "source": "stooq", "date": "2024-03-14", "check": check, "severity": severity,
                "detail": "..."}

    clean, warned, broken = (tmp_path / f"{s}.json" for s in ("AAPL", "IBM", "MSFT"))
    clean.write_text("[]")
    warned.write_text(json.dumps([finding("IBM", "missing_session", "warning")]))
    out = tmp_path / "validate.json"
    check_validation([clean, warned], out)
    assert json.loads(out.read_text()) == {"reports": 2, "findings": 1, "errors": 0}
    out.unlink()
    broken.write_text(json.dumps([finding("MSFT", "price_unit_jump", "error")] * 2))
    with pytest.raises(CxqError, match=r"error findings in 1 series.*\n  MSFT/stooq: price_unit_jump x2"):
        check_validation([clean, warned, broken], out)
    assert not out.exists() and broken.exists()  # the reports stay: they are the details
