"""Readers vs. a writer rewriting the whole lake (issue 2: "0 errors, 0 wrong rows"; the suite's small
version is tests/test_query_concurrency.py).

Two versions of U symbols x 1 source x 20 years of daily bars, as two Stooq-bulk ZIPs (different seeds:
every bar is restated). The lake is built from version 0; then READERS reader processes query in a loop
while the writer does --rewrites full rewrites, alternating versions 1, 0, 1, ...: ``import_file`` of the
ZIP (a later fetch: the latest fetch wins, so every partition changes), ``process`` of every symbol and
``refresh_serving`` - what ``cxq_data process run`` does. One more rewrite after the readers stopped
("alone") shows how much of the rewrite time is CPU contention with the readers (2 cores here).

Readers run, over and over: the per-symbol count and sum(close) of 20 sample symbols, ``query.latest`` of
one symbol, and count + sum(close) per year over the whole universe; the first and last through
``query.sql``/``query.latest`` (a new connection each time) and also, with the sample, on a long-lived
``db.connect`` connection renewed every 10 rounds. Every result must equal version 0 or version 1 exactly
(expected values come from the ZIPs, parsed here, not from the lake); a new-connection query that ran
entirely between two serving refreshes must equal the version just served ("stale" otherwise).
Exit status 1 on any error, wrong or stale result.

    .venv/bin/python benchmarks/bench_readers.py --symbols 500     # writes benchmarks/results/readers_u500.json
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from gen_stooq_bulk import EXCHANGES, ticker, write_bulk_zip
from results_io import save_results

SOURCE, SEEDS, READERS, LATEST_ROWS, SAMPLE = "stooq", (11, 12), 2, 5, 20
END = dt.date(2025, 11, 25)
Q_SAMPLE = ("SELECT symbol, count(*) AS n, sum(close) AS s FROM daily WHERE symbol IN ({}) "
            "GROUP BY symbol ORDER BY symbol")
Q_YEARS = "SELECT year, count(*) AS n, sum(close) AS s FROM daily GROUP BY year ORDER BY year"


def reader(data_dir: str, out: str, stop: str, sample: str, latest_symbol: str) -> None:
    """Reader process: query until the stop file appears; dump [t0, t1, kind, mode, value, error] rows."""
    from cxq_data import query
    from cxq_data.db import connect
    from cxq_data.paths import DataLayout

    layout = DataLayout(Path(data_dir))
    q_sample = Q_SAMPLE.format(", ".join(f"'{s}'" for s in sample.split(",")))
    fresh = {
        "sample": lambda: [list(r.values()) for r in query.sql(layout, q_sample)],
        "latest": lambda: [[r["date"].isoformat(), r["close"]] for r in query.latest(layout, latest_symbol,
                                                                                      LATEST_ROWS, SOURCE)],
        "years": lambda: [[int(r["year"]), r["n"], r["s"]] for r in query.sql(layout, Q_YEARS)],
    }
    rows: list[list[Any]] = []
    persistent, rounds = None, 0

    def run(kind: str, mode: str, fn: Any) -> None:
        t0 = time.time()
        try:
            value = fn()
            rows.append([t0, time.time(), kind, mode, value, None])
        except Exception as exc:  # noqa: BLE001 - every failure is recorded: the benchmark requires none
            rows.append([t0, time.time(), kind, mode, None, f"{type(exc).__name__}: {exc}"[:500]])

    while not os.path.exists(stop):
        for kind, fn in fresh.items():
            run(kind, "fresh", fn)
        if persistent is None or rounds % 10 == 0:  # a long-lived connection, renewed now and then
            try:
                if persistent is not None:
                    persistent.close()
                persistent = connect(layout)
            except Exception as exc:  # noqa: BLE001
                rows.append([time.time(), time.time(), "connect", "persistent", None, f"{type(exc).__name__}: {exc}"])
                persistent = None
        if persistent is not None:
            con = persistent
            run("sample", "persistent", lambda c=con: [list(r) for r in c.execute(q_sample).fetchall()])
            run("years", "persistent", lambda c=con: [[int(y), n, s] for y, n, s in c.execute(Q_YEARS).fetchall()])
        rounds += 1
        if rounds == 1:
            Path(out + ".ready").touch()
    Path(out).write_text(json.dumps(rows))


def expected(zip_path: Path, u: int, sample: list[str], latest_symbol: str) -> dict[str, list]:
    """The answers of version ``zip_path``, parsed straight from the ZIP (numpy, not the lake's normalizer)."""
    import numpy as np

    n_year: dict[int, int] = {}
    s_year: dict[int, float] = {}
    out: dict[str, list] = {"sample": [], "latest": []}
    with zipfile.ZipFile(zip_path) as archive:
        for i in range(u):
            tick = ticker(i)
            text = archive.read(f"data/daily/us/{EXCHANGES[i % 3]} stocks/{i // 1000 + 1}/{tick.lower()}.us.txt")
            cols = np.loadtxt(io.BytesIO(text), delimiter=",", skiprows=1, usecols=(2, 7), ndmin=2)
            dates, closes = cols[:, 0].astype(np.int64), cols[:, 1]
            years = dates // 10000
            for y in np.unique(years):
                n_year[int(y)] = n_year.get(int(y), 0) + int((years == y).sum())
                s_year[int(y)] = s_year.get(int(y), 0.0) + float(closes[years == y].sum())
            if tick in sample:
                out["sample"].append([tick, len(closes), float(closes.sum())])
            if tick == latest_symbol:
                out["latest"] = [[f"{d // 10000:04d}-{d // 100 % 100:02d}-{d % 100:02d}", float(c)]
                                 for d, c in zip(dates[::-1][:LATEST_ROWS], closes[::-1][:LATEST_ROWS])]
    out["sample"].sort()
    out["years"] = [[y, n_year[y], s_year[y]] for y in sorted(n_year)]
    return out


def matches(got: list, want: list) -> bool:
    """Keys and counts equal, floats equal up to summation order."""
    if got is None or len(got) != len(want):
        return False
    for g, w in zip(got, want):
        if len(g) != len(w) or list(g[:-1]) != list(w[:-1]) or not isinstance(g[-1], float):
            return False
        if not math.isclose(g[-1], w[-1], rel_tol=1e-9, abs_tol=1e-6):
            return False
    return True


def classify(rows: list[list], versions: list[dict], served: list[tuple[float, float, int]]) -> dict[str, Any]:
    """Per kind/mode: counts by version, wrong, stale, errors, latency. ``served``: (start, end, version) of
    each serving refresh; between the end of one and the start of the next, the views show its version."""
    stats: dict[str, Any] = {}
    bad, errors = [], []
    for t0, t1, kind, mode, value, error in rows:
        s = stats.setdefault(f"{kind}/{mode}", {"queries": 0, "v0": 0, "v1": 0, "wrong": 0, "stale": 0,
                                                "errors": 0, "ms": []})
        s["queries"] += 1
        if error is not None:
            s["errors"] += 1
            errors.append(error)
            continue
        s["ms"].append((t1 - t0) * 1000)
        hit = [v for v, exp in enumerate(versions) if matches(value, exp[kind])]
        if not hit:
            s["wrong"] += 1
            bad.append({"kind": kind, "mode": mode, "t": t0, "got": value})
            continue
        s[f"v{hit[0]}"] += 1
        if mode == "fresh":
            for (_, end, version), nxt in zip(served, [*served[1:], (math.inf, math.inf, -1)]):
                if t0 >= end and t1 <= nxt[0] and hit[0] != version:
                    s["stale"] += 1
                    bad.append({"kind": kind, "mode": mode, "t": t0, "stale": True, "got_version": hit[0],
                                "served_version": version})
    for s in stats.values():
        ms = sorted(s.pop("ms")) or [math.nan]
        s.update(median_ms=round(statistics.median(ms), 1), p95_ms=round(ms[int(0.95 * (len(ms) - 1))], 1),
                 max_ms=round(ms[-1], 1))
    total = {k: sum(s[k] for s in stats.values()) for k in ("queries", "v0", "v1", "wrong", "stale", "errors")}
    return {"by_query": stats, **total, "bad_examples": bad[:5], "error_examples": sorted(set(errors))[:10]}


def run(u: int, years: int, rewrites: int, workdir: Path) -> dict[str, Any]:
    from cxq_data.db import refresh_serving
    from cxq_data.ingest.importer import import_file
    from cxq_data.lake import process
    from cxq_data.paths import DataLayout

    layout = DataLayout(workdir / "data")
    zips = [workdir / f"v{v}.zip" for v in range(2)]
    for path, seed in zip(zips, SEEDS):
        rows_per_symbol = write_bulk_zip(path, u, years, END, seed)
    sample = sorted({ticker(i * u // SAMPLE) for i in range(SAMPLE)})
    latest_symbol = ticker(u // 2)
    versions = [expected(z, u, sample, latest_symbol) for z in zips]
    assert not any(matches(versions[0][k], versions[1][k]) for k in versions[0]), "versions must differ"
    res: dict[str, Any] = {"symbols": u, "sources": 1, "years": years, "rows": u * rows_per_symbol,
                           "readers": READERS, "cpus": os.cpu_count(), "loadavg_start": os.getloadavg()}

    def write(version: int) -> dict[str, Any]:
        t0 = time.time()
        imported = import_file(layout, zips[version], SOURCE)
        assert imported.ok and len(imported.imported) == u, (len(imported.imported), imported.errors[:3])
        t1 = time.time()
        summary = process(layout, SOURCE, progress=False)
        assert summary.ok, [r for r in summary.rows() if r["status"] == "failed"][:3]
        t2 = time.time()
        daily = next(d for d in refresh_serving(layout).serving.datasets if d.dataset == "daily")
        t3 = time.time()
        return {"version": version, "import_s": round(t1 - t0, 2), "process_s": round(t2 - t1, 2),
                "serving_s": round(t3 - t2, 2), "total_s": round(t3 - t0, 2),
                "files_written": sum(r.files_written for r in summary.results),
                "partitions": sum(len(r.years) for r in summary.results),
                "serving_groups_rebuilt": daily.rebuilt, "serving_start": t2, "serving_end": t3,
                "loadavg_after": os.getloadavg()}

    res["initial_build"] = write(0)
    res["calendar_years"] = res["initial_build"]["partitions"] // u
    served = [(0.0, res["initial_build"]["serving_end"], 0)]
    stop, outs = workdir / "stop", [workdir / f"reader{i}.json" for i in range(READERS)]
    procs = [subprocess.Popen([sys.executable, __file__, "--reader", str(layout.root), str(o), str(stop),
                               ",".join(sample), latest_symbol]) for o in outs]
    try:
        deadline = time.time() + 120
        while not all(Path(f"{o}.ready").exists() for o in outs):  # every reader has queried version 0
            assert time.time() < deadline and all(p.poll() is None for p in procs), "a reader did not start"
            time.sleep(0.1)
        t_start, flips = time.time(), []
        for k in range(1, rewrites + 1):
            flips.append(write(k % 2))
            served.append((flips[-1]["serving_start"], flips[-1]["serving_end"], k % 2))
        time.sleep(2.0)  # readers query the last version too
        res["read_seconds"] = round(time.time() - t_start, 1)
    finally:
        stop.touch()
        for p in procs:
            p.wait(timeout=300)
    # The same rewrite with no reader running: how much of the rewrite time above is CPU contention.
    res["rewrite_alone"] = write((rewrites + 1) % 2)
    rows = [row for o in outs for row in json.loads(o.read_text())]
    res["rewrites"] = flips
    res["reads"] = classify(rows, versions, served)
    res["reads"]["both_versions_observed"] = res["reads"]["v0"] > 0 and res["reads"]["v1"] > 0
    res["loadavg_end"] = os.getloadavg()
    return res


def print_table(res: dict[str, Any]) -> None:
    r = res["reads"]
    print(f"U={res['symbols']} x {res['calendar_years']} calendar years ({res['rows']:,} rows), "
          f"{res['readers']} readers for {res['read_seconds']} s, load average {res['loadavg_start'][0]:.2f} -> {res['loadavg_end'][0]:.2f}")
    print(f"{'rewrite':<9}{'version':>8}{'import s':>10}{'process s':>11}{'serving s':>11}{'total s':>9}"
          f"{'files written':>15}{'groups':>8}")
    for i, f in enumerate([res["initial_build"], *res["rewrites"], res["rewrite_alone"]]):
        name = "build" if i == 0 else "alone" if i > len(res["rewrites"]) else i
        print(f"{name:<9}{f['version']:>8}{f['import_s']:>10.1f}{f['process_s']:>11.1f}"
              f"{f['serving_s']:>11.1f}{f['total_s']:>9.1f}{f['files_written']:>15,}{f['serving_groups_rebuilt']:>8}")
    print(f"{'query':<20}{'runs':>7}{'v0':>7}{'v1':>7}{'wrong':>7}{'stale':>7}{'errors':>8}"
          f"{'median ms':>11}{'p95 ms':>9}")
    for name, s in sorted(r["by_query"].items()):
        print(f"{name:<20}{s['queries']:>7}{s['v0']:>7}{s['v1']:>7}{s['wrong']:>7}{s['stale']:>7}{s['errors']:>8}"
              f"{s['median_ms']:>11.1f}{s['p95_ms']:>9.1f}")
    print(f"total: {r['queries']} queries, {r['errors']} errors, {r['wrong']} wrong, {r['stale']} stale; "
          f"both versions observed: {r['both_versions_observed']}")
    for example in r["error_examples"] + r["bad_examples"]:
        print("  ", str(example)[:300])


def main() -> None:
    if len(sys.argv) == 7 and sys.argv[1] == "--reader":
        return reader(*sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=500, help="universe size U")
    ap.add_argument("--years", type=int, default=20)
    ap.add_argument("--rewrites", type=int, default=3, help="full rewrites of the lake under the readers (K)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to build (default: a temp dir, removed)")
    ap.add_argument("--out", type=Path, default=None, help="default: benchmarks/results/readers_u{U}.json")
    args = ap.parse_args()
    if args.rewrites < 2:
        ap.error("--rewrites must be >= 2 (both versions are rewritten under the readers)")
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cxq-bench-readers-"))
    try:
        res = run(args.symbols, args.years, args.rewrites, workdir)
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
    save_results(res, args.out, f"readers_u{args.symbols}.json")
    print_table(res)
    r = res["reads"]
    sys.exit(1 if r["errors"] or r["wrong"] or r["stale"] or not r["both_versions_observed"] else 0)


if __name__ == "__main__":
    main()
