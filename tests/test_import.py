"""import_file: Stooq CSV, Stooq ASCII, generic CSV (yfinance exports), refusals and idempotency."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
from pathlib import Path

import pytest

from cxq_data.errors import (
    ConfigError,
    DataFormatError,
    InvalidSourceError,
    InvalidSymbolError,
    MalformedResponseError,
)
from cxq_data.ingest.importer import import_file
from cxq_data.normalize import merge_latest, normalize_record
from cxq_data.paths import DataLayout
from cxq_data.raw import list_raw

DEFECTS = Path(__file__).parent / "data" / "yfinance_defects"
STOOQ_CSV = "Date,Open,High,Low,Close,Volume\n2024-06-06,195.69,196.5,194.17,194.48,41181800\n" \
            "2024-06-07,194.65,196.94,194.14,196.89,53103900\n"


def all_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


@pytest.fixture
def layout(data_dir: Path) -> DataLayout:
    return DataLayout(data_dir)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_stooq_csv_is_stored_byte_for_byte_and_normalizes(layout, tmp_path):
    src = write(tmp_path, "aapl_us_d.csv", STOOQ_CSV)
    summary = import_file(layout, src, "stooq", "aapl")
    assert summary.imported == ["AAPL"] and summary.rows == 2 and summary.format == "stooq_csv"
    [record] = list_raw(layout, "stooq", "AAPL")
    assert record.path.read_bytes() == src.read_bytes()
    assert record.manifest["format"] == "stooq_csv" and record.manifest["origin"] == "aapl_us_d.csv"
    assert record.manifest["kind"] == "daily" and record.path.suffix == ".csv"
    bars = normalize_record(record).bars.to_pylist()
    assert [(b["date"], b["close"], b["adjusted_close"]) for b in bars] == [
        (dt.date(2024, 6, 6), 194.48, None), (dt.date(2024, 6, 7), 196.89, None)]
    assert bars[0]["ingested_at"] == record.fetched_at


def test_stooq_header_under_a_user_source_uses_the_generic_parser(layout, tmp_path):
    src = write(tmp_path, "x.csv", STOOQ_CSV)
    summary = import_file(layout, src, "my_feed", "AAPL")
    assert summary.format == "generic_csv"
    [record] = list_raw(layout, "my_feed", "AAPL")
    assert normalize_record(record).bars.column("close").to_pylist() == [194.48, 196.89]


def test_single_stooq_ascii_file_takes_symbol_from_ticker(layout, tmp_path):
    text = ("<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"
            "BRK-B.US,D,20240606,000000,400,405,399,404.5,3000000,0\n")
    src = write(tmp_path, "brk-b.us.txt", text)
    summary = import_file(layout, src, "stooq")
    assert summary.imported == ["BRK.B"] and summary.format == "stooq_bulk_txt"
    [record] = list_raw(layout, "stooq", "BRK.B")
    assert record.path.suffix == ".txt" and normalize_record(record).bars.column("close").to_pylist() == [404.5]
    with pytest.raises(ConfigError, match="does not match the file's ticker"):
        import_file(layout, src, "stooq", "AAPL")


@pytest.mark.parametrize("name", sorted(p.name for p in DEFECTS.glob("*.csv")))
def test_yfinance_defect_exports_import_sorted_with_actions(layout, tmp_path, name):
    src = tmp_path / name
    shutil.copy(DEFECTS / name, src)
    summary = import_file(layout, src, "yf_export", "TEST.L")
    assert summary.imported == ["TEST.L"] and summary.format == "generic_csv"
    n_lines = len([ln for ln in src.read_text().splitlines()[1:] if ln.strip()])
    assert summary.rows == n_lines  # every row kept (no duplicate dates in these files)
    out = normalize_record(list_raw(layout, "yf_export", "TEST.L")[0])
    dates = out.bars.column("date").to_pylist()
    assert dates == sorted(dates) and len(dates) == n_lines
    rows = [ln.split(",") for ln in src.read_text().splitlines()[1:]]
    newest_row = max(rows, key=lambda r: r[0])  # some exports are newest first, some oldest first
    newest = out.bars.slice(len(dates) - 1).to_pylist()[0]
    assert newest["date"].isoformat() == newest_row[0][:10] and newest["close"] == float(newest_row[4])
    assert newest["adjusted_close"] == float(newest_row[5]) and newest["volume"] == int(newest_row[6])
    expected_actions = {ln.split(",")[0][:10] for ln in src.read_text().splitlines()[1:]
                        if float(ln.split(",")[7]) != 0 or float(ln.split(",")[8]) not in (0.0, 1.0)}
    assert {a.isoformat() for a in out.actions.column("date").to_pylist()} == expected_actions


def test_reimport_same_bytes_stores_nothing_new_bytes_win(layout, tmp_path):
    src = write(tmp_path, "a.csv", STOOQ_CSV)
    import_file(layout, src, "stooq", "AAPL")
    before = all_files(layout.root)
    again = import_file(layout, src, "stooq", "AAPL")
    assert again.unchanged == ["AAPL"] and again.imported == [] and all_files(layout.root) == before
    src.write_text(STOOQ_CSV.replace("196.89", "197.00"))
    newer = import_file(layout, src, "stooq", "AAPL")
    assert newer.imported == ["AAPL"] and len(list_raw(layout, "stooq", "AAPL")) == 2
    merged = merge_latest([normalize_record(r) for r in list_raw(layout, "stooq", "AAPL")])
    assert merged.bars.column("close").to_pylist() == [194.48, 197.00]


@pytest.mark.parametrize("symbol", ["../etc", "AA PL", "A/B", "x" * 30, ""])
def test_bad_symbol_is_refused_and_nothing_written(layout, tmp_path, symbol):
    src = write(tmp_path, "a.csv", STOOQ_CSV)
    with pytest.raises(InvalidSymbolError):
        import_file(layout, src, "stooq", symbol)
    assert not layout.raw.exists()


@pytest.mark.parametrize("source", ["Bad-Name", "a/b", "", "x" * 33, "../raw"])
def test_bad_source_is_refused(layout, tmp_path, source):
    src = write(tmp_path, "a.csv", STOOQ_CSV)
    with pytest.raises(InvalidSourceError):
        import_file(layout, src, source, "AAPL")
    assert not layout.raw.exists()


def test_single_symbol_file_needs_symbol_and_missing_file_is_named(layout, tmp_path):
    src = write(tmp_path, "a.csv", STOOQ_CSV)
    with pytest.raises(ConfigError, match="needs --symbol"):
        import_file(layout, src, "stooq")
    with pytest.raises(ConfigError, match="nope.csv: no such file"):
        import_file(layout, tmp_path / "nope.csv", "stooq", "AAPL")
    with pytest.raises(ConfigError, match=r"/dev/null: not a regular file"):
        import_file(layout, "/dev/null", "stooq", "AAPL")
    with pytest.raises(ConfigError, match=": a folder"):
        import_file(layout, tmp_path, "stooq", "AAPL")


@pytest.mark.parametrize(
    ("source", "text", "error", "message"),
    [
        ("mine", "Date,Open,High,Low,Close\n2024-06-06,1,2,0.5,1.5\n2024-06-07,1,2,zz,1.5\n", DataFormatError,
         r"bad.csv: line 3 column Low: not a number: 'zz'"),
        ("mine", "Date,Open,High,Low\n2024-06-06,1,2,0.5\n", DataFormatError, "missing column"),
        ("mine", "<html><head><title>Login</title></head></html>", DataFormatError, "HTML page"),
        ("stooq", "No data", DataFormatError, "bad.csv: line 1 is not a CSV header: .No data."),
        ("stooq", STOOQ_CSV + "2024-06-10,1,2,0.5,1.5,abc\n", MalformedResponseError,
         "line 4 column Volume: not a number"),
        ("mine", "Date,Open,High,Low,Close\n", DataFormatError, "no data rows"),
    ],
)
def test_bad_file_is_refused_with_place_and_nothing_stored(layout, tmp_path, source, text, error, message):
    src = write(tmp_path, "bad.csv", text)
    with pytest.raises(error, match=message):
        import_file(layout, src, source, "AAPL")
    assert not layout.raw.exists()


def test_import_fetched_at_is_recent_and_hash_matches(layout, tmp_path):
    src = write(tmp_path, "a.csv", STOOQ_CSV)
    import_file(layout, src, "stooq", "AAPL")
    [record] = list_raw(layout, "stooq", "AAPL")
    assert record.manifest["sha256"] == hashlib.sha256(src.read_bytes()).hexdigest()
    age = dt.datetime.now(dt.UTC) - record.fetched_at
    assert dt.timedelta(0) <= age < dt.timedelta(minutes=5)
