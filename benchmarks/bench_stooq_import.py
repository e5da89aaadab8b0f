#!/usr/bin/env python3
"""Stooq bulk ZIP: import (raw layer) + process (Parquet lake) time for N symbols x Y years.

Goal: 5,000 symbols x 20 years imported and processed in < 2 minutes on 2 cores.

Steps, each timed: generate the ZIP (benchmarks/gen_stooq_bulk.py, not counted), ``import_file``
(zip stored under raw/stooq/_bulk, one raw file per member), the same import again (idempotent:
must store nothing), then ``lake.process_symbol`` for every symbol on ``--workers`` processes.
Writes benchmarks/results/stooq_import.json.

    python benchmarks/bench_stooq_import.py --symbols 5000 --years 20 --workers 2
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from gen_stooq_bulk import write_bulk_zip

from cxq_data.paths import DataLayout

GOAL_SECONDS = 120.0


def _process_one(args: tuple[str, str]) -> int:
    from cxq_data.lake import process_symbol

    root, symbol = args
    return process_symbol(DataLayout(Path(root)), "stooq", symbol).rows


def process_all(layout: DataLayout, symbols: list[str], workers: int) -> int:
    ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else None)
    with ctx.Pool(workers) as pool:
        return sum(pool.imap_unordered(_process_one, [(str(layout.root), s) for s in symbols], chunksize=16))


def run(symbols: int, years: int, workers: int, work_dir: Path, zip_path: Path | None,
        process: bool = True) -> dict[str, object]:
    from cxq_data.ingest.importer import import_file

    if zip_path is None:
        zip_path = work_dir / "d_us_txt.zip"
        t0 = time.perf_counter()
        write_bulk_zip(zip_path, symbols, years)
        print(f"generated {zip_path} ({zip_path.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t0:.1f} s")
    layout = DataLayout(work_dir / "data")

    t0 = time.perf_counter()
    first = import_file(layout, zip_path, "stooq", workers=workers)
    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    again = import_file(layout, zip_path, "stooq", workers=workers)
    t_reimport = time.perf_counter() - t0
    assert not again.imported, "re-import stored new raw files"

    t0 = time.perf_counter()
    processed_rows = process_all(layout, first.imported, workers) if process else 0
    t_process = time.perf_counter() - t0
    total = t_import + t_process
    return {
        "symbols": len(first.imported), "years": years, "rows": first.rows, "processed_rows": processed_rows,
        "workers": workers, "zip_mb": round(zip_path.stat().st_size / 1e6, 1),
        "import_s": round(t_import, 2), "reimport_s": round(t_reimport, 2), "process_s": round(t_process, 2),
        "import_plus_process_s": round(total, 2), "goal_s": GOAL_SECONDS, "goal_met": total < GOAL_SECONDS,
        "rows_per_s_import": round(first.rows / t_import), "cpu": platform.processor() or platform.machine(),
        "cpus": multiprocessing.cpu_count(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--symbols", type=int, default=5000)
    ap.add_argument("--years", type=int, default=20)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--zip", type=Path, default=None, help="Use this bulk ZIP instead of generating one.")
    ap.add_argument("--no-process", action="store_true", help="Time the import only.")
    ap.add_argument("--work-dir", type=Path, default=None, help="Where the data dir goes (default: a temp dir).")
    args = ap.parse_args()
    work_dir = args.work_dir or Path(tempfile.mkdtemp(prefix="cxq-bench-stooq-"))
    try:
        result = run(args.symbols, args.years, args.workers, work_dir, args.zip, not args.no_process)
    finally:
        if args.work_dir is None:
            shutil.rmtree(work_dir, ignore_errors=True)
    out = Path(__file__).parent / "results" / "stooq_import.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
