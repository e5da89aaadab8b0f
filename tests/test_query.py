"""Query functions and the query/process/db/lake CLI commands."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
from click.testing import CliRunner
from lake_support import synthetic_bars, test_normalizer, trading_days, ts, write_raw_lines  # noqa: F401

from cxq_data import query
from cxq_data.cli import cli
from cxq_data.db import DatabaseMissingError, refresh_serving
from cxq_data.errors import ConfigError, InvalidSourceError, InvalidSymbolError
from cxq_data.lake import process
from cxq_data.paths import DataLayout

pytestmark = pytest.mark.usefixtures("test_normalizer")

DAYS = trading_days(dt.date(2023, 1, 1), dt.date(2024, 12, 31))


def _bars(symbol: str, source: str) -> dict[dt.date, float]:
    return {dt.date.fromisoformat(line.split(",")[1]): float(line.split(",")[5])
            for line in synthetic_bars(symbol + source, DAYS)}


@pytest.fixture
def layout(data_dir) -> DataLayout:
    layout = DataLayout(data_dir)
    for source in ("yfinance", "stooq"):
        for sym in ("AAPL", "MSFT", "BRK.B"):
            write_raw_lines(layout, source, sym, synthetic_bars(sym + source, DAYS), ts(0))
        process(layout, source, progress=False)
    write_raw_lines(layout, "yfinance", "AAPL", ["D,2024-12-31,1,2,0.5,NaN,,7"], ts(3))  # a NaN close
    process(layout, "yfinance", ["AAPL"], progress=False)
    refresh_serving(layout)
    return layout


def test_latest_returns_newest_rows_per_source(layout):
    rows = query.latest(layout, "msft", rows=3)
    assert [(r["source"], r["date"]) for r in rows] == [("stooq", d) for d in DAYS[-1:-4:-1]] + [
        ("yfinance", d) for d in DAYS[-1:-4:-1]]
    expected = _bars("MSFT", "stooq")
    assert [r["close"] for r in rows[:3]] == [expected[d] for d in DAYS[-1:-4:-1]]
    only = query.latest(layout, "MSFT", rows=2, source="yf")
    assert [r["source"] for r in only] == ["yfinance", "yfinance"] and only[0]["symbol"] == "MSFT"


def test_date_range_is_inclusive_and_crosses_years(layout):
    rows = query.date_range(layout, "BRK.B", "2023-12-28", "2024-01-03", source="stooq")
    expected = [d for d in DAYS if dt.date(2023, 12, 28) <= d <= dt.date(2024, 1, 3)]
    assert [r["date"] for r in rows] == expected
    assert [r["close"] for r in rows] == [_bars("BRK.B", "stooq")[d] for d in expected]
    with pytest.raises(ConfigError, match="after end"):
        query.date_range(layout, "AAPL", "2024-02-01", "2024-01-01")
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        query.date_range(layout, "AAPL", "2024-13-01", "2024-12-31")


def test_free_sql_only_reads_not_even_files_are_written(layout, tmp_path):
    """A read-only connection still lets COPY ... TO overwrite the serving files the views read."""
    from cxq_data.sql_guard import WriteRefusedError

    serving = sorted((layout.serving / "daily").rglob("*.parquet"))
    before = {p: p.read_bytes() for p in serving}
    count = query.sql(layout, "SELECT count(*) AS n FROM daily")[0]["n"]
    refused = [
        f"COPY (SELECT 1 AS x) TO '{serving[0]}' (FORMAT parquet)",
        f"EXPLAIN ANALYZE COPY (SELECT 1 AS x) TO '{tmp_path / 'x.csv'}'",
        f"ATTACH '{tmp_path / 'new.db'}'",
        "SELECT 1; SELECT 2",
        "SET threads = 1",
        "INSTALL httpfs",
        "CREATE TABLE t AS SELECT 1",
    ]
    for statement in refused:
        with pytest.raises(WriteRefusedError):
            query.sql(layout, statement)
    assert {p: p.read_bytes() for p in serving} == before
    assert not (tmp_path / "x.csv").exists() and not (tmp_path / "new.db").exists()
    assert query.sql(layout, "SELECT count(*) AS n FROM daily")[0]["n"] == count
    for reading in ("WITH d AS (SELECT * FROM daily) SELECT count(*) FROM d", "DESCRIBE daily", "SHOW TABLES",
                    "EXPLAIN SELECT * FROM daily", "FROM daily LIMIT 1", "SUMMARIZE daily"):
        assert query.sql(layout, reading)
    with pytest.raises(query.QueryError, match="syntax|Parser"):
        query.sql(layout, "SELEC 1")


def test_symbols_and_sources_are_validated_and_bound(layout):
    for bad in ("A'; DROP VIEW daily; --", "AAPL' OR '1'='1", "../etc"):
        with pytest.raises(InvalidSymbolError):
            query.latest(layout, bad)
    with pytest.raises(InvalidSourceError):
        query.latest(layout, "AAPL", source="x' OR 1=1 --")
    # A well-formed symbol that looks like SQL is just a value that matches nothing.
    assert query.latest(layout, "OR-1") == []
    assert query.sql(layout, "SELECT count(*) AS n FROM daily")[0]["n"] == len(DAYS) * 6


def test_sql_is_read_only_and_errors_are_clear(layout):
    from cxq_data.query import QueryError
    from cxq_data.sql_guard import WriteRefusedError

    with pytest.raises(WriteRefusedError, match="CREATE statements are refused"):
        query.sql(layout, "CREATE TABLE t AS SELECT 1")
    with pytest.raises(QueryError, match="nope"):
        query.sql(layout, "SELECT nope FROM daily")
    rows = query.sql(layout, "SELECT source, count(*) AS n FROM daily WHERE symbol = 'AAPL' GROUP BY 1 ORDER BY 1")
    assert rows == [{"source": "stooq", "n": len(DAYS)}, {"source": "yfinance", "n": len(DAYS)}]


def test_missing_database_is_a_clear_error(data_dir):
    layout = DataLayout(data_dir)
    with pytest.raises(DatabaseMissingError):
        query.latest(layout, "AAPL")
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "query", "latest", "--symbol", "AAPL"])
    assert result.exit_code == 1 and "run `cxq_data db init`" in result.output
    assert "Traceback" not in result.output


def test_cli_latest_json_follows_the_conventions(layout):
    result = CliRunner().invoke(cli, ["--data-dir", str(layout.root), "query", "latest", "--symbol", "AAPL",
                                      "--rows", "2", "--source", "yfinance", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["date"] for r in rows] == ["2024-12-31", "2024-12-30"]
    first = rows[0]
    assert set(first) == {"symbol", "source", "date", "open", "high", "low", "close", "adjusted_close",
                          "volume", "ingested_at"}
    assert (first["symbol"], first["source"], first["close"], first["volume"]) == ("AAPL", "yfinance", None, 7)
    assert first["ingested_at"] == "2025-01-04T12:00:00Z" and rows[1]["ingested_at"] == "2025-01-01T12:00:00Z"
    assert isinstance(rows[1]["close"], float)


def test_cli_range_csv_sql_table_and_empty_json(layout):
    runner, base = CliRunner(), ["--data-dir", str(layout.root), "query"]
    res = runner.invoke(cli, base + ["range", "--symbol", "MSFT", "--start", "2024-01-02", "--end", "2024-01-03",
                                     "--source", "stooq", "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0].startswith("symbol,source,date,open") and len(lines) == 3
    assert lines[1].startswith("MSFT,stooq,2024-01-02,")
    res = runner.invoke(cli, base + ["sql", "SELECT symbol, count(*) AS n FROM daily GROUP BY 1 ORDER BY 1"])
    assert res.exit_code == 0 and res.output.splitlines()[2].split() == ["AAPL", str(len(DAYS) * 2)]
    res = runner.invoke(cli, base + ["latest", "--symbol", "ZZZZ", "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.output) == []
    res = runner.invoke(cli, base + ["latest", "--symbol", "A'; DROP"])
    assert res.exit_code == 1 and "invalid symbol" in res.output
    res = runner.invoke(cli, base + ["sql", f"COPY daily TO '{layout.root / 'dump.csv'}'"])
    assert res.exit_code == 1 and "COPY statements are refused" in res.output
    assert not (layout.root / "dump.csv").exists()
    res = runner.invoke(cli, base + ["sql", "DROP VIEW daily"])
    assert res.exit_code == 1 and "error:" in res.output
    assert query.latest(layout, "AAPL", rows=1)  # the view is still there


def test_cli_process_run_serve_db_init_and_lake_summary(data_dir):
    layout = DataLayout(data_dir)
    for sym in ("AAPL", "MSFT"):
        write_raw_lines(layout, "stooq", sym, synthetic_bars(sym, DAYS), ts(0))
    write_raw_lines(layout, "stooq", "BAD", ["D,not-a-date,1,1,1,1,,1"], ts(0))
    runner, base = CliRunner(), ["--data-dir", str(data_dir)]
    res = runner.invoke(cli, base + ["process", "run", "--source", "stooq", "--symbols", "AAPL,MSFT",
                                     "--no-progress", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert query.sql(layout, "SELECT count(*) AS n FROM daily")[0]["n"] == 2 * len(DAYS)
    res = runner.invoke(cli, base + ["process", "run", "--source", "stooq", "--no-serve", "--no-progress"])
    assert res.exit_code == 1 and "1 failed" in res.output and "BAD" in res.output
    res = runner.invoke(cli, base + ["process", "serve"])
    assert res.exit_code == 0 and "serving daily: 2 file(s)" in res.output
    res = runner.invoke(cli, base + ["process", "run", "--source", "stoq", "--no-progress"])  # a typo
    assert res.exit_code == 1 and "no raw data for source 'stoq'" in res.output and "with raw data: stooq" in res.output
    layout.duckdb_path.unlink()
    res = runner.invoke(cli, base + ["db", "init"])
    assert res.exit_code == 0 and layout.duckdb_path.is_file()
    res = runner.invoke(cli, base + ["lake", "summary", "--format", "json"])
    assert res.exit_code == 0
    assert [(r["source"], r["symbols"], r["rows"]) for r in json.loads(res.output)] == [("stooq", 2, 2 * len(DAYS))]


def test_data_dir_is_taken_after_any_command_and_from_dotenv(data_dir, tmp_path, monkeypatch):
    """`cxq_data query latest --data-dir D` works like `cxq_data --data-dir D query latest`, and
    CXQ_DATA_DIR in ./.env is honoured like every other .env setting."""
    from cxq_data import settings

    layout = DataLayout(data_dir)
    write_raw_lines(layout, "stooq", "AAPL", synthetic_bars("AAPL", DAYS), ts(0))
    runner = CliRunner()
    res = runner.invoke(cli, ["process", "run", "--source", "stooq", "--no-progress", "--data-dir", str(data_dir)])
    assert res.exit_code == 0, res.output
    after = runner.invoke(cli, ["query", "latest", "--symbol", "AAPL", "--format", "json", "--data-dir", str(data_dir)])
    before = runner.invoke(cli, ["--data-dir", str(data_dir), "query", "latest", "--symbol", "AAPL", "--format", "json"])
    assert after.exit_code == 0 and after.output == before.output and len(json.loads(after.output)) == 10
    elsewhere = runner.invoke(cli, ["--data-dir", str(tmp_path / "other"), "lake", "summary", "--data-dir",
                                    str(data_dir), "--format", "json"])  # the command's option wins
    assert json.loads(elsewhere.output)[0]["symbols"] == 1
    assert "--data-dir" in runner.invoke(cli, ["query", "latest", "--help"]).output

    work = tmp_path / "cwd"
    work.mkdir()
    (work / ".env").write_text(f"CXQ_DATA_DIR={data_dir}\n")
    monkeypatch.chdir(work)
    monkeypatch.setenv("CXQ_DATA_DIR", "set-by-the-test")
    monkeypatch.delenv("CXQ_DATA_DIR")  # absent now, and removed again after the test
    monkeypatch.setattr(settings.load_dotenv_once, "_done", False, raising=False)
    res = runner.invoke(cli, ["lake", "summary", "--format", "json"])
    assert res.exit_code == 0 and json.loads(res.output)[0]["rows"] == len(DAYS), res.output


def test_damaged_state_and_environment_errors_are_one_line_errors(data_dir, monkeypatch):
    """A damaged index or manifest names itself and the command that rebuilds it; that command does;
    an OSError (read-only or full disk) is `error: ...`, exit 1, not a traceback."""
    layout = DataLayout(data_dir)
    for sym in ("AAPL", "MSFT"):
        write_raw_lines(layout, "stooq", sym, synthetic_bars(sym, DAYS), ts(0))
    runner, base = CliRunner(), ["--data-dir", str(data_dir)]
    assert runner.invoke(cli, [*base, "process", "run", "--source", "stooq", "--no-progress"]).exit_code == 0
    summary = runner.invoke(cli, [*base, "lake", "summary", "--format", "json"]).output

    index = layout.symbol_source_dir("MSFT", "stooq") / "_index.json"
    index.write_text("garbage")
    res = runner.invoke(cli, [*base, "lake", "summary"])
    assert res.exit_code == 1 and isinstance(res.exception, SystemExit)  # not a StateFileError traceback
    assert "_index.json: damaged lake index" in res.output
    assert "cxq_data process run --source stooq --symbols MSFT` rebuilds it" in res.output
    res = runner.invoke(cli, [*base, "process", "run", "--source", "stooq", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert runner.invoke(cli, [*base, "lake", "summary", "--format", "json"]).output == summary

    (layout.serving_dataset("daily") / "manifest.json").write_text("{")
    res = runner.invoke(cli, [*base, "db", "init"])
    assert res.exit_code == 1 and "damaged serving manifest" in res.output and "Traceback" not in res.output
    assert runner.invoke(cli, [*base, "process", "serve"]).exit_code == 0
    assert runner.invoke(cli, [*base, "db", "init"]).exit_code == 0
    assert len(json.loads(runner.invoke(cli, [*base, "query", "latest", "--symbol", "MSFT", "--format",
                                              "json"]).output)) == 10

    def read_only(*_args, **_kwargs):
        raise OSError(30, "Read-only file system", str(data_dir / "state" / "serving.lock"))

    monkeypatch.setattr("cxq_data.db.init_db", read_only)
    res = runner.invoke(cli, [*base, "db", "init"])
    assert res.exit_code == 1 and not isinstance(res.exception, OSError)
    assert res.output.strip() == f"error: Read-only file system: {data_dir / 'state' / 'serving.lock'}"


_PROBE = """
import sys
from cxq_data.cli import main
try:
    main(["--data-dir", sys.argv[1], "query", "latest", "--symbol", "AAPL", "--rows", "1", "--format", "json"])
except SystemExit as exc:
    assert not exc.code, exc.code
import cxq_data.query
heavy = sorted(m for m in ("pandas", "yfinance", "boto3", "databento", "matplotlib") if m in sys.modules)
print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


def test_query_path_imports_neither_pandas_nor_yfinance(layout):
    proc = subprocess.run([sys.executable, "-c", _PROBE, str(layout.root)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)[0]["date"] == "2024-12-31"
    assert "HEAVY=\n" in proc.stderr or proc.stderr.strip().endswith("HEAVY=")
