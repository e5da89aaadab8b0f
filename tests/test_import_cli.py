"""``cxq_data ingest import`` through click's CliRunner: summaries, JSON, exit codes, errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from click.testing import CliRunner

from cxq_data.cli import cli
from cxq_data.paths import DataLayout
from cxq_data.raw import list_raw

STOOQ_CSV = "Date,Open,High,Low,Close,Volume\n2024-06-06,195.69,196.5,194.17,194.48,41181800\n"
HEADER = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"


def invoke(data_dir: Path, *args: str):
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), "ingest", "import", *args])


def test_csv_import_prints_summary_and_stores_raw(data_dir, tmp_path):
    src = tmp_path / "aapl.csv"
    src.write_text(STOOQ_CSV)
    result = invoke(data_dir, "--source", "stooq", "--symbol", "AAPL", "--no-progress", str(src))
    assert result.exit_code == 0, result.output
    assert "1 symbol(s) imported, 0 unchanged, 1 rows" in result.output and "imported  AAPL" in result.output
    assert len(list_raw(DataLayout(data_dir), "stooq", "AAPL")) == 1
    again = invoke(data_dir, "--source", "stooq", "--symbol", "AAPL", "--format", "json", str(src))
    assert again.exit_code == 0
    doc = json.loads(again.output)
    assert doc["imported"] == 0 and doc["unchanged_symbols"] == ["AAPL"] and doc["rows"] == 1


def test_bulk_zip_json_lists_skipped_members_and_exits_1_on_broken_member(data_dir, tmp_path):
    src = tmp_path / "d_us_txt.zip"
    with zipfile.ZipFile(src, "w") as archive:
        archive.writestr("data/daily/us/nyse stocks/1/ibm.us.txt", HEADER + "IBM.US,D,20240606,000000,1,2,0.5,1.5,7,0\n")
        archive.writestr("data/daily/us/nyse stocks/1/bad.us.txt", HEADER + "BAD.US,D,20240606,000000,1,2,0.5,??,7,0\n")
    result = invoke(data_dir, "--source", "stooq", "--format", "json", "--workers", "1", str(src))
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert doc["symbols"] == ["IBM"] and doc["rows"] == 1
    [skipped] = doc["skipped"]
    assert skipped["member"].endswith("bad.us.txt") and skipped["error"] and "<CLOSE>" in skipped["reason"]
    table = invoke(data_dir, "--source", "stooq", "--workers", "1", str(src))
    assert "bad.us.txt" in table.output and "not a number" in table.output


def test_errors_name_the_problem_and_exit_1(data_dir, tmp_path):
    src = tmp_path / "prices.csv"
    src.write_text("Date,Open,High,Low,Close\n2024-06-06,1,2,0.5,1.5\n2024-06-07,1,2,0.5,oops\n")
    bad_file = invoke(data_dir, "--source", "mine", "--symbol", "ABC", str(src))
    assert bad_file.exit_code == 1 and "prices.csv: line 3 column Close: not a number: 'oops'" in bad_file.output
    no_symbol = invoke(data_dir, "--source", "mine", str(src))
    assert no_symbol.exit_code == 1 and "needs --symbol" in no_symbol.output
    bad_symbol = invoke(data_dir, "--source", "mine", "--symbol", "../../etc", str(src))
    assert bad_symbol.exit_code == 1 and "invalid symbol" in bad_symbol.output
    bad_source = invoke(data_dir, "--source", "No Good", "--symbol", "ABC", str(src))
    assert bad_source.exit_code == 1 and "invalid source name" in bad_source.output
    assert not (data_dir / "raw").exists()


def test_help_documents_the_formats():
    result = CliRunner().invoke(cli, ["ingest", "import", "--help"])
    assert result.exit_code == 0 and "Stooq bulk ZIP" in result.output and "--symbol" in result.output
