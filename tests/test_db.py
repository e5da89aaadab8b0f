"""DuckDB views: typed when empty, explicit file lists, pruning by source and by row-group stats."""

from __future__ import annotations

import datetime as dt
import os
import re

import duckdb
import pytest
from lake_support import synthetic_bars, test_normalizer, trading_days, ts, write_raw_lines  # noqa: F401

from cxq_data import db
from cxq_data.db import DatabaseMissingError, connect, init_db, refresh_serving
from cxq_data.lake import process
from cxq_data.paths import DataLayout

pytestmark = pytest.mark.usefixtures("test_normalizer")

DAYS = trading_days(dt.date(2022, 1, 1), dt.date(2023, 12, 31))
SYMBOLS = [f"S{i:02d}" for i in range(12)]
DAILY_COLUMNS = [("symbol", "VARCHAR"), ("source", "VARCHAR"), ("year", "INTEGER"), ("date", "DATE"),
                 ("open", "DOUBLE"), ("high", "DOUBLE"), ("low", "DOUBLE"), ("close", "DOUBLE"),
                 ("adjusted_close", "DOUBLE"), ("volume", "BIGINT"), ("ingested_at", "TIMESTAMP WITH TIME ZONE")]


@pytest.fixture
def layout(data_dir) -> DataLayout:
    return DataLayout(data_dir)


def _fill(layout: DataLayout) -> None:
    for source in ("yfinance", "stooq"):
        for sym in SYMBOLS:
            write_raw_lines(layout, source, sym, synthetic_bars(sym, DAYS), ts(0))
        write_raw_lines(layout, source, "S03", ["A,2023-05-01,0.5,"], ts(1))
        assert process(layout, source, progress=False).ok


def _describe(con, view: str) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in con.execute(f"DESCRIBE {view}").fetchall()]


def _explain(con, sql: str, params: list) -> str:
    return "\n".join(r[1] for r in con.execute("EXPLAIN ANALYZE " + sql, params).fetchall())


def test_empty_lake_gives_typed_empty_views(layout):
    path = init_db(layout)
    assert path == layout.duckdb_path
    con = connect(layout)
    assert _describe(con, "daily") == DAILY_COLUMNS
    assert con.execute("SELECT count(*) FROM daily").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM actions").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM intraday").fetchone() == (0,)
    assert con.execute("SELECT count(*) FROM lake_summary").fetchone() == (0,)
    con.close()


def test_views_over_served_files_have_the_canonical_columns(layout):
    _fill(layout)
    refresh_serving(layout)
    con = connect(layout)
    assert _describe(con, "daily") == DAILY_COLUMNS
    got = con.execute("SELECT source, count(*), count(DISTINCT symbol), min(year), max(year) FROM daily "
                      "GROUP BY source ORDER BY source").fetchall()
    assert got == [("stooq", len(DAYS) * 12, 12, 2022, 2023), ("yfinance", len(DAYS) * 12, 12, 2022, 2023)]
    assert con.execute("SELECT symbol, source, date, dividend FROM actions ORDER BY source").fetchall() == [
        ("S03", "stooq", dt.date(2023, 5, 1), 0.5), ("S03", "yfinance", dt.date(2023, 5, 1), 0.5)]
    summary = con.execute("SELECT * FROM lake_summary WHERE symbol = 'S05'").fetchall()
    assert summary == [("S05", "stooq", DAYS[0], DAYS[-1], len(DAYS)), ("S05", "yfinance", DAYS[0], DAYS[-1], len(DAYS))]
    # The views name serving files explicitly: no glob and nothing under processed/.
    sql = con.execute("SELECT sql FROM duckdb_views() WHERE view_name = 'daily'").fetchone()[0]
    assert "*" not in sql.split("FROM", 1)[1] and "/processed/" not in sql and "/serving/daily/" in sql
    con.close()


def test_source_filter_prunes_files_and_symbol_filter_prunes_row_groups(layout, monkeypatch):
    monkeypatch.setattr("cxq_data.serving.SERVING_ROW_GROUP_ROWS", 500)  # several row groups per file
    _fill(layout)
    refresh_serving(layout)
    con = connect(layout)
    plan = _explain(con, "SELECT count(*) FROM daily WHERE source = ?", ["stooq"])
    assert re.search(r"Scanning Files: 2/4", plan), plan
    plan = _explain(con, "SELECT * FROM daily WHERE symbol = ? AND source = ? AND year = ?",
                    ["S05", "yfinance", 2023])
    assert re.search(r"Scanning Files: 1/4", plan), plan
    scanned, total = map(int, re.search(r"Row Groups Scanned: (\d+) / (\d+)", plan).groups())
    assert total >= 6 and scanned <= 2, plan  # the sorted symbol column's stats skip the rest
    rows = con.execute("SELECT count(*) FROM daily WHERE symbol = ? AND source = ? AND year = ?",
                       ["S05", "yfinance", 2023]).fetchone()[0]
    assert rows == sum(1 for d in DAYS if d.year == 2023)
    con.close()


def test_extra_views_are_created_after_daily_and_actions(layout, monkeypatch):
    import cxq_data.quality.views as qviews

    monkeypatch.setattr(qviews, "extra_views", lambda: {
        "bars_with_actions": "SELECT d.symbol, count(a.date) AS n FROM daily d "
                             "LEFT JOIN actions a USING (symbol, source, date) GROUP BY d.symbol"})
    _fill(layout)
    refresh_serving(layout)
    con = connect(layout)
    assert con.execute("SELECT n FROM bars_with_actions WHERE symbol = 'S03'").fetchone() == (2,)
    con.close()


def test_rebuild_is_atomic_and_an_open_reader_keeps_working(layout):
    _fill(layout)
    refresh_serving(layout)
    reader = duckdb.connect(str(layout.duckdb_path), read_only=True)
    before = reader.execute("SELECT count(*) FROM daily").fetchone()
    write_raw_lines(layout, "stooq", "NEW", synthetic_bars("NEW", DAYS[:3]), ts(2))
    process(layout, "stooq", ["NEW"], progress=False)
    refresh_serving(layout)
    assert reader.execute("SELECT count(*) FROM daily").fetchone() == before  # old snapshot still readable
    # While that old instance is open in this process, connect() must still see the new views.
    with connect(layout) as con:
        assert con.execute("SELECT count(*) FROM daily").fetchone() == (before[0] + 3,)
    reader.close()
    leftovers = [p.name for p in layout.root.iterdir() if p.name.startswith(".tmp-") or p.suffix == ".wal"]
    assert leftovers == []


def test_a_killed_init_leaves_no_temp_database_behind_but_a_live_ones_stays(layout):
    import subprocess
    import sys

    init_db(layout)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = layout.root / f".tmp-cxq.duckdb.{dead}.partial"
    live = layout.root / f".tmp-cxq.duckdb.{os.getppid()}.partial"  # a running process (our parent)
    for path in (stale, stale.with_name(stale.name + ".wal"), live):
        path.write_bytes(b"half")
    init_db(layout)
    assert not stale.exists() and not stale.with_name(stale.name + ".wal").exists()
    assert live.exists()


def test_connect_without_database_says_how_to_create_it(layout):
    with pytest.raises(DatabaseMissingError, match="cxq_data db init"):
        connect(layout)


def test_view_sql_quotes_paths(tmp_path):
    odd = tmp_path / "it's" / "part-1.parquet"
    assert "it''s" in db.dataset_view_sql("daily", [odd])
