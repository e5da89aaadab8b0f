"""Lake benchmark: U symbols x 2 sources x YEARS years, built from Stooq-bulk-style ZIPs (issue 2, Performance).

Steps (page cache warm; figures are medians of --repeat where repeated):
  0. a file-system probe (``fs_probe``): on a journal-less ext4 the build's file creation is several
     times slower for minutes after a large deletion, e.g. right after a previous run removed its lake.
  1. build: generate one bulk ZIP per source (not timed), then ``import_file(process=True)`` (raw layer,
     partitions and indexes in one pass: ``cxq_data ingest import --process``; ``--two-pass``: import, then
     ``lake_batch.process_batch``) and ``refresh_serving`` (serving files + views), each timed; the sum
     is the "build the lake" figure (goal < 120 s at U=5,000).
  2. queries through the views (cold = new connection + query, warm = again on it), the library's
     ``query.latest`` and the whole CLI ``query latest`` in a new process; the same queries through the
     glob-view baseline read_parquet('processed/**/*.parquet', hive_partitioning=true).
  3. one new trading day for every symbol of both sources, incremental: a one-day bulk ZIP per source
     (like Stooq's daily update file) -> import + process (one pass, or two) -> serving.
  4. Snakemake: the workflow once (buckets + serving), then a no-op rerun and a dry run, timed.

    .venv/bin/python benchmarks/bench_lake.py --symbols 5000      # writes benchmarks/results/lake_u5000.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from gen_stooq_bulk import EXCHANGES, HEADER, ticker, write_bulk_zip
from results_io import save_results

from cxq_data.db import connect, refresh_serving
from cxq_data.ingest.importer import import_file
from cxq_data.lake_batch import StagedDaily, process_batch
from cxq_data.lake_io import write_atomic_unsynced
from cxq_data.paths import DataLayout

ROOT = Path(__file__).resolve().parents[1]
SOURCES = (("stooq", 7), ("stooq_b", 8))  # second source: the same format under a user source name
END = dt.date(2025, 11, 25)
NEW_DAY = dt.date(2025, 11, 26)

Q_LATEST = "SELECT symbol, source, date, close FROM daily WHERE symbol = ? AND source = 'stooq' ORDER BY date DESC LIMIT 10"
Q_XSECTION = "SELECT symbol, close FROM daily WHERE source = 'stooq' AND date = ?"
Q_UNIVERSE = "SELECT year, count(*), avg(volume) FROM daily GROUP BY year ORDER BY year"
FS_PROBE_SLOW_US = 250  # fs_probe figure above which the build's file creation is not representative
GOALS = {"latest_duckdb_ms": 100, "cli_latest_ms": 1000, "xsection_ms": 200, "universe_ms": 1500,
         "build_s": 120, "new_day_s": 30, "snakemake_noop_s": 10}


def timed(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def cpu_seconds() -> tuple[float, float]:
    """(user, system) CPU time of this process and its reaped children (the worker pools)."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + kids.ru_utime, own.ru_stime + kids.ru_stime


def fs_probe(workdir: Path, files: int = 2100) -> float:
    """Microseconds per new partition-like file (mkdir + temp file + rename), timed before the build.

    On this VM's journal-less ext4 it is ~90-170 us normally and 300-750 us for about five minutes after
    a large tree was deleted: without a journal, ext4 skips recently deleted inodes when it allocates, and
    scans past every one of them (fs/ext4/ialloc.c, find_inode_bit). 210,000 files then cost up to a
    minute more, so the figure says under which condition the build ran. The probe's files stay until
    the workdir is removed: deleting them now would itself slow the build.
    """
    payload = os.urandom(12_000)  # about one partition file
    t0 = time.perf_counter()
    for i in range(files):  # the lake writer's own call: new folder, temp file, rename
        write_atomic_unsynced(workdir / "_fs_probe" / f"d{i}" / "data.parquet", payload)
    return (time.perf_counter() - t0) / files * 1e6


def stopwatch(fn: Callable[[], Any]) -> tuple[Any, float]:
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def load(layout: DataLayout, zips: dict[str, Path], workers: int, two_pass: bool = False) -> dict[str, float]:
    """Each source's ZIP into raw + lake, then serving rebuilt from the staged tables.

    One pass (default, ``cxq_data ingest import --process``): import_s covers import and processing.
    Two passes (``ingest import`` then ``process run``): import_s and process_s separately.
    """
    res: dict[str, float] = {"import_s": 0.0, "process_s": 0.0}
    user0, sys0 = cpu_seconds()
    staged = StagedDaily()
    for source, path in zips.items():
        imported, t = stopwatch(lambda s=source, p=path: import_file(layout, p, s, workers=workers,
                                                                     process=not two_pass, keep_tables=True))
        res["import_s"] += t
        batch = imported.processed
        if two_pass:
            batch, t = stopwatch(lambda s=source, i=imported: process_batch(layout, s, i.imported, workers=workers,
                                                                            progress=False, keep_tables=True))
            res["process_s"] += t
        assert batch is not None and batch.summary.ok, [r for r in batch.summary.rows() if r["status"] == "failed"][:3]
        staged.merge(batch.staged)  # type: ignore[arg-type]
    result, res["serving_s"] = stopwatch(lambda: refresh_serving(layout, staged=staged))
    daily = next(d for d in result.serving.datasets if d.dataset == "daily")
    res["serving_groups_rebuilt"] = daily.rebuilt
    res["total_s"] = res["import_s"] + res["process_s"] + res["serving_s"]
    user1, sys1 = cpu_seconds()
    res["cpu_s"] = user1 + sys1 - user0 - sys0  # on a shared machine, cpu_s / cores bounds the unloaded wall time
    res["cpu_sys_s"] = sys1 - sys0  # kernel share: file system, page cache, page faults
    res["one_pass"] = not two_pass
    return res


def day_zip(path: Path, u: int, day: dt.date) -> Path:
    """A bulk ZIP holding one row per symbol for ``day`` (Stooq's daily update file)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for i in range(u):
            tick = ticker(i)
            row = f"{tick}.US,D,{day:%Y%m%d},000000,10.5,11.25,10.0,11.0,123456,0\n"
            buf = io.StringIO(HEADER + row)
            archive.writestr(f"data/daily/us/{EXCHANGES[i % 3]} stocks/{i // 1000 + 1}/{tick.lower()}.us.txt",
                             buf.getvalue())
    return path


def query_figures(open_con: Callable[[], Any], params: dict[str, list], repeat: int, warm: bool = True
                  ) -> dict[str, float]:
    """cold = new connection (+ view binding) + query; warm = the same query again on that connection."""
    out = {}
    for name, sql in (("latest", Q_LATEST), ("xsection", Q_XSECTION), ("universe", Q_UNIVERSE)):
        args = params[name]

        def cold(sql: str = sql, args: list = args) -> None:
            con = open_con()
            con.execute(sql, args).fetchall()
            con.close()

        out[f"{name}_cold_ms"] = timed(cold, repeat)
        if warm:
            con = open_con()
            con.execute(sql, args).fetchall()
            out[f"{name}_warm_ms"] = timed(lambda c=con, q=sql, a=args: c.execute(q, a).fetchall(), repeat)
            con.close()
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
    cmd = [str(ROOT / ".venv/bin/cxq_data"), "--data-dir", str(layout.root), "query", "latest", "--symbol", symbol,
           "--rows", "10", "--format", "json"]
    if not Path(cmd[0]).exists():
        cmd[:1] = [sys.executable, "-c", "from cxq_data.cli import main; main()"]
    return timed(lambda: subprocess.run(cmd, check=True, capture_output=True), repeat)


def snakemake_figures(layout: DataLayout, workdir: Path) -> dict[str, float]:
    """First run writes the bucket files + serving marker; then the no-op rerun and a dry run are timed."""
    config = workdir / "config.yaml"
    config.write_text(json.dumps({"data_dir": str(layout.root), "universe": {"symbols": [], "sources": []}}))
    base = [str(ROOT / ".venv/bin/snakemake"), "db", "--snakefile", str(ROOT / "Snakefile"), "--directory", str(ROOT),
            "--configfile", str(config), "--cores", "2", "--scheduler", "greedy"]
    env = {**os.environ, "PATH": f"{ROOT / '.venv/bin'}:{os.environ['PATH']}"}

    def run(*extra: str) -> float:
        extra = extra or ("-q",)
        t0 = time.perf_counter()
        proc = subprocess.run([*base, *extra], capture_output=True, text=True, env=env, timeout=900, check=False)
        if proc.returncode:
            raise RuntimeError(f"snakemake failed: {proc.stderr[-2000:]}")
        return time.perf_counter() - t0

    # The first run creates the bucket files (every process job finds its pairs up to date from their
    # indexes, ~1 ms each) and the serving marker; the second one must find nothing to do.
    first = run()
    noop = run()
    dry = run("-n")
    return {"snakemake_first_run_s": first, "snakemake_noop_s": noop, "snakemake_dryrun_s": dry}


def run(u: int, years: int, repeat: int, workers: int, workdir: Path, baseline: str, snakemake: bool,
        two_pass: bool = False) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    layout = DataLayout(workdir / "data")
    zips = {}
    for source, seed in SOURCES:
        zips[source] = workdir / f"{source}.zip"
        rows_per_symbol = write_bulk_zip(zips[source], u, years, END, seed)
    res: dict[str, Any] = {"symbols": u, "sources": len(SOURCES), "years": years, "workers": workers,
                           "rows": u * len(SOURCES) * rows_per_symbol, "goals": GOALS}
    res["fs_probe_us_per_file"] = fs_probe(workdir)
    res["build"] = load(layout, zips, workers, two_pass)
    res["partition_files"] = sum(1 for _ in layout.processed.glob("symbol=*/source=*/year=*/data.parquet"))
    res["serving_files"] = sum(1 for _ in (layout.serving / "daily").rglob("*.parquet"))
    symbol = ticker(u // 2)
    params = {"latest": [symbol], "xsection": [END - dt.timedelta(days=100)], "universe": []}
    if params["xsection"][0].weekday() >= 5:
        params["xsection"] = [END - dt.timedelta(days=98)]
    res["views"] = query_figures(lambda: connect(layout), params, repeat)
    from cxq_data import query

    res["views"]["query_latest_library_ms"] = timed(lambda: query.latest(layout, symbol, 10, "stooq"), repeat)
    res["views"]["cli_latest_cold_ms"] = cli_cold_ms(layout, symbol, repeat)
    if baseline != "skip":
        res["glob_baseline"] = query_figures(glob_connection(layout), params, 1 if baseline == "once" else repeat,
                                             warm=baseline != "once")
    new_day = {s: day_zip(workdir / f"{s}-day.zip", u, NEW_DAY) for s, _ in SOURCES}
    res["new_day"] = load(layout, new_day, workers, two_pass)
    if snakemake:
        try:
            res.update(snakemake_figures(layout, workdir))
        except (RuntimeError, subprocess.TimeoutExpired) as exc:  # keep the other figures
            res["snakemake_error"] = str(exc)[-2000:]
    return res


def _steps(r: dict[str, Any]) -> str:
    if r.get("one_pass"):
        return f"import+process (one pass) {r['import_s']:.1f} s + serving {r['serving_s']:.1f} s"
    return f"import {r['import_s']:.1f} s + process {r['process_s']:.1f} s + serving {r['serving_s']:.1f} s"


def print_table(res: dict[str, Any]) -> None:
    b, d, v = res["build"], res["new_day"], res["views"]
    g = res.get("glob_baseline", {})
    print(f"U={res['symbols']} x {res['sources']} sources x {res['years']} years: {res['rows']:,} rows, "
          f"{res['partition_files']:,} partition files -> {res['serving_files']} daily serving files")
    probe = res.get("fs_probe_us_per_file", float("nan"))
    print(f"file system before the build: {probe:.0f} us per new file"
          + ("  (slow: a large tree was deleted minutes ago? see fs_probe)" if probe > FS_PROBE_SLOW_US else ""))
    print(f"build: {_steps(b)} = {b['total_s']:.1f} s, CPU {b['cpu_s']:.0f} s ({b.get('cpu_sys_s', float('nan')):.0f} s "
          f"kernel) (goal < {GOALS['build_s']} s)")
    print(f"new day: {_steps(d)} = {d['total_s']:.1f} s, CPU {d['cpu_s']:.0f} s, {d['serving_groups_rebuilt']} "
          f"group(s) rebuilt (goal < {GOALS['new_day_s']} s)")
    print(f"{'query (ms)':<12}{'views cold':>12}{'views warm':>12}{'glob cold':>12}{'glob warm':>12}")
    for q in ("latest", "xsection", "universe"):
        print(f"{q:<12}{v[q + '_cold_ms']:>12.1f}{v[q + '_warm_ms']:>12.1f}{g.get(q + '_cold_ms', float('nan')):>12.1f}"
              f"{g.get(q + '_warm_ms', float('nan')):>12.1f}")
    print(f"query.latest() {v['query_latest_library_ms']:.1f} ms; CLI `query latest` cold {v['cli_latest_cold_ms']:.0f} ms")
    if "snakemake_error" in res:
        print("snakemake:", res["snakemake_error"][-300:])
    if "snakemake_noop_s" in res:
        print(f"snakemake: first run {res['snakemake_first_run_s']:.1f} s, no-op {res['snakemake_noop_s']:.1f} s, "
              f"dry run {res['snakemake_dryrun_s']:.1f} s (goal < {GOALS['snakemake_noop_s']} s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=500, help="universe size U")
    ap.add_argument("--years", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--baseline", choices=("full", "once", "skip"), default="full",
                    help="glob-view baseline: cold+warm x repeat, cold once (large U: ~20-50 s a query), or none")
    ap.add_argument("--no-snakemake", action="store_true", help="skip the Snakemake no-op measurement")
    ap.add_argument("--two-pass", action="store_true",
                    help="import, then process (two commands) instead of `ingest import --process` (one pass)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir, removed)")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/lake_u{U}.json")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cxq-bench-lake-"))
    try:
        res = run(args.symbols, args.years, args.repeat, args.workers, workdir, args.baseline, not args.no_snakemake,
                  args.two_pass)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    save_results(res, args.out, f"lake_u{args.symbols}.json")
    print_table(res)


if __name__ == "__main__":
    main()
