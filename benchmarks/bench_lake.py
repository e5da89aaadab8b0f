"""Lake benchmark: synthetic lake of U symbols x 2 sources x YEARS years, built through the lake API.

Measures (median of --repeat runs, page cache warm):
  * lake build (write_symbol for every symbol/source) and serving build (refresh_serving from scratch)
  * query latest: DuckDB part (new connection + query; then warm) and the whole CLI, cold, in a new process
  * one-date cross-section, universe aggregate (count/avg volume by year)
  * one new trading day for every symbol of one source: lake rewrite + serving refresh
  * the glob-view baseline read_parquet('processed/**/*.parquet', hive_partitioning=true), same queries

    .venv/bin/python benchmarks/bench_lake.py --symbols 500        # writes benchmarks/results/lake.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from cxq_data.db import connect, refresh_serving
from cxq_data.lake import write_symbol
from cxq_data.normalize.base import Normalized
from cxq_data.paths import DataLayout
from cxq_data.schema import ACTIONS_SCHEMA, PARTITION_SCHEMA

SOURCES = ("yfinance", "stooq")
INGESTED = dt.datetime(2026, 1, 2, 22, tzinfo=dt.UTC)

Q_LATEST = ("SELECT symbol, source, date, close FROM daily WHERE symbol = ? AND source = 'yfinance' "
            "ORDER BY date DESC LIMIT 10")
Q_XSECTION = "SELECT symbol, close FROM daily WHERE source = 'yfinance' AND date = ?"
Q_UNIVERSE = "SELECT year, count(*), avg(volume) FROM daily GROUP BY year ORDER BY year"


def business_days(first_year: int, last_year: int) -> np.ndarray:
    days = np.arange(np.datetime64(f"{first_year}-01-01"), np.datetime64(f"{last_year + 1}-01-01"))
    return days[np.is_busday(days)]


def symbol_table(symbol: str, source: str, days: np.ndarray) -> pa.Table:
    rng = np.random.default_rng(zlib.crc32(f"{symbol}|{source}".encode()))
    close = np.round(50 * np.exp(np.cumsum(rng.normal(0, 0.01, len(days)))), 2)
    open_ = np.round(close * (1 + rng.normal(0, 0.003, len(days))), 2)
    n = len(days)
    cols = {
        "date": pa.array(days.astype("datetime64[D]"), pa.date32()),
        "open": open_, "high": np.maximum(open_, close) * 1.01, "low": np.minimum(open_, close) * 0.99,
        "close": close, "adjusted_close": close * 0.97,
        "volume": rng.integers(1_000, 10_000_000, n),
        "ingested_at": pa.array(np.full(n, np.datetime64(INGESTED.replace(tzinfo=None), "us")),
                                pa.timestamp("us", tz="UTC")),
    }
    return pa.table(cols).cast(PARTITION_SCHEMA)


def symbols_of(u: int) -> list[str]:
    return [f"S{i:05d}" for i in range(u)]


def build_lake(layout: DataLayout, u: int, days: np.ndarray) -> float:
    t0 = time.perf_counter()
    empty = ACTIONS_SCHEMA.empty_table()
    for source in SOURCES:
        for sym in symbols_of(u):
            write_symbol(layout, source, sym, Normalized(symbol_table(sym, source, days), empty))
    return time.perf_counter() - t0


def timed(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def query_figures(open_con: Callable[[], Any], params: dict[str, list], repeat: int) -> dict[str, float]:
    """cold = new connection (+ view binding) + query; warm = the same query again on that connection."""
    out = {}
    for name, sql in (("latest", Q_LATEST), ("xsection", Q_XSECTION), ("universe", Q_UNIVERSE)):
        args = params[name]

        def cold(sql: str = sql, args: list = args) -> None:
            con = open_con()
            con.execute(sql, args).fetchall()
            con.close()

        warm_con = open_con()
        warm_con.execute(sql, args).fetchall()
        out[f"{name}_cold_ms"] = timed(cold, repeat)
        out[f"{name}_warm_ms"] = timed(lambda c=warm_con, q=sql, a=args: c.execute(q, a).fetchall(), repeat)
        warm_con.close()
    return out


def glob_connection(layout: DataLayout) -> Callable[[], Any]:
    import duckdb

    def open_con() -> Any:
        con = duckdb.connect(":memory:")
        con.execute(f"CREATE VIEW daily AS SELECT * FROM read_parquet('{layout.processed}/**/*.parquet', "
                    "hive_partitioning = true)")
        return con

    return open_con


def cli_cold_ms(layout: DataLayout, symbol: str, repeat: int) -> float:
    cmd = [sys.executable, "-c", "from cxq_data.cli import main; main()", "--data-dir", str(layout.root),
           "query", "latest", "--symbol", symbol, "--rows", "10", "--format", "json"]
    return timed(lambda: subprocess.run(cmd, check=True, capture_output=True), repeat)


def one_new_day(layout: DataLayout, u: int, days: np.ndarray) -> dict[str, float]:
    """Append the next business day to every symbol of one source, then refresh serving + views."""
    next_day = np.array([np.busday_offset(days[-1], 1, roll="forward")])
    tables = {}
    for sym in symbols_of(u):  # history unchanged + one bar (the new day's values are arbitrary)
        tables[sym] = pa.concat_tables([symbol_table(sym, "yfinance", days),
                                        symbol_table(sym, "yfinance", next_day)])
    empty = ACTIONS_SCHEMA.empty_table()
    t0 = time.perf_counter()
    for sym, table in tables.items():
        write_symbol(layout, "yfinance", sym, Normalized(table, empty))
    lake_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = refresh_serving(layout)
    serve_s = time.perf_counter() - t0
    daily = next(d for d in result.serving.datasets if d.dataset == "daily")
    return {"new_day_lake_s": lake_s, "new_day_serving_s": serve_s, "new_day_groups_rebuilt": daily.rebuilt}


def run(u: int, years: int, repeat: int, workdir: Path) -> dict[str, Any]:
    layout = DataLayout(workdir / "data")
    days = business_days(2026 - years, 2025)[:-1]  # the last day of 2025 is the "new day" below
    res: dict[str, Any] = {"symbols": u, "sources": len(SOURCES), "years": years, "rows": u * len(SOURCES) * len(days),
                           "partition_files": u * len(SOURCES) * years}
    res["lake_build_s"] = build_lake(layout, u, days)
    t0 = time.perf_counter()
    refresh_serving(layout)
    res["serving_build_s"] = time.perf_counter() - t0
    res["serving_files"] = sum(1 for _ in layout.serving.rglob("*.parquet"))
    res["processed_bytes"] = sum(p.stat().st_size for p in layout.processed.rglob("*.parquet"))
    res["serving_bytes"] = sum(p.stat().st_size for p in layout.serving.rglob("*.parquet"))
    symbol = symbols_of(u)[u // 2]
    params = {"latest": [symbol], "xsection": [dt.date.fromisoformat(str(days[-100]))], "universe": []}
    res["views"] = query_figures(lambda: connect(layout), params, repeat)
    from cxq_data import query

    res["views"]["query_latest_library_ms"] = timed(lambda: query.latest(layout, symbol, 10, "yfinance"), repeat)
    res["views"]["cli_latest_cold_ms"] = cli_cold_ms(layout, symbol, repeat)
    res["glob_baseline"] = query_figures(glob_connection(layout), params, repeat)
    res.update(one_new_day(layout, u, days))
    return res


def print_table(res: dict[str, Any]) -> None:
    print(f"U={res['symbols']} x {res['sources']} sources x {res['years']} years: {res['rows']:,} rows, "
          f"{res['partition_files']:,} partition files -> {res['serving_files']} serving files")
    print(f"lake build {res['lake_build_s']:.1f} s, serving build {res['serving_build_s']:.2f} s, "
          f"bytes processed {res['processed_bytes'] / 1e6:.1f} MB / serving {res['serving_bytes'] / 1e6:.1f} MB")
    print(f"{'query':<12}{'views cold':>12}{'views warm':>12}{'glob cold':>12}{'glob warm':>12}   (ms)")
    for q in ("latest", "xsection", "universe"):
        v, g = res["views"], res["glob_baseline"]
        print(f"{q:<12}{v[q + '_cold_ms']:>12.1f}{v[q + '_warm_ms']:>12.1f}{g[q + '_cold_ms']:>12.1f}"
              f"{g[q + '_warm_ms']:>12.1f}")
    print(f"query.latest() {res['views']['query_latest_library_ms']:.1f} ms; "
          f"CLI `query latest` cold process {res['views']['cli_latest_cold_ms']:.0f} ms")
    print(f"one new day (1 source): lake {res['new_day_lake_s']:.2f} s + serving/views "
          f"{res['new_day_serving_s']:.2f} s ({res['new_day_groups_rebuilt']} group(s) rebuilt)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=50, help="universe size U")
    ap.add_argument("--years", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir, removed)")
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "lake.json")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cxq-bench-lake-"))
    try:
        res = run(args.symbols, args.years, args.repeat, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    res["measured_at"] = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2) + "\n")
    print_table(res)


if __name__ == "__main__":
    main()
