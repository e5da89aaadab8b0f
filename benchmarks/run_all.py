#!/usr/bin/env python3
"""Run every benchmark with sensible defaults (``make bench``); each writes benchmarks/results/*.json.

    python benchmarks/run_all.py                      # U=500: a few minutes on 2 cores
    python benchmarks/run_all.py --scale 5000         # the issue's goal scale (~15 min on 2 cores)
    CXQ_BENCH_SCALE=5000 make bench                   # the same through make
    python benchmarks/run_all.py --only lake,stooq_import

A failing benchmark is reported and the others still run; the exit status says whether any failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def commands(scale: int) -> dict[str, list[str]]:
    """Benchmark name -> argv (after the interpreter). Large U: the glob baseline runs cold once only
    (it costs 20-50 s a query at U=5,000); the readers benchmark stops at U=1,000."""
    baseline = "full" if scale <= 1000 else "once"
    return {
        "lake": ["bench_lake.py", "--symbols", str(scale), "--baseline", baseline],
        "stooq_import": ["bench_stooq_import.py", "--symbols", str(scale)],
        # readers querying while the lake is rewritten 3 times (~3 min at U=500, ~7 min at U=1,000)
        "readers": ["bench_readers.py", "--symbols", str(min(scale, 1000))],
        "options_convert": ["bench_options_convert.py"],
        "quality_scores": ["quality_scores.py"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=int, default=int(os.environ.get("CXQ_BENCH_SCALE", "500")),
                    help="universe size U for the lake and import benchmarks (env CXQ_BENCH_SCALE)")
    ap.add_argument("--only", default="", help="comma-separated subset of: " + ", ".join(commands(1)))
    args = ap.parse_args()
    todo = commands(args.scale)
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(todo))
        if unknown:
            ap.error(f"unknown benchmark(s) {unknown}; choose from {sorted(todo)}")
        todo = {n: todo[n] for n in wanted}
    failed = []
    for name, argv in todo.items():
        print(f"=== {name}: {' '.join(argv)}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / argv[0]), *argv[1:]], cwd=HERE.parent, check=False).returncode
        print(f"=== {name}: exit {code} after {time.perf_counter() - t0:.0f} s", flush=True)
        if code:
            failed.append(name)
    print(f"results in {HERE / 'results'}; failed: {', '.join(failed) or 'none'}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
