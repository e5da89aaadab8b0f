"""Benchmark: ``cxq_data options convert`` vs databento's ``to_parquet`` vs a plain numpy read.

Each step runs in its own subprocess under ``/usr/bin/time -v`` (peak RSS, user+sys CPU) and is
repeated; medians are reported. The machine may be shared, so CPU seconds are reported next to
wall seconds (CPU is the steadier number on a loaded box).

Inputs: ``--input F`` (a .dbn.zst), or ``--generate`` (default): a standard synthetic day and, with
``--heavy``, a heavy one, made by ``../shared/tools/gen_opra_cbbo.py`` when present, else by the
project's own ``cxq_data.options.synth`` at a larger size. Results: benchmarks/results/options_convert.json.

Goals: >= 8x faster than ``to_parquet`` defaults, within 4x of the numpy read, peak RSS < 400 MB.
``cxq_convert`` is the CLI with its defaults (each row group sorted); ``cxq_convert_file_sort`` the
globally sorted alternative (``convert_dbn(..., sort="file")``). The job estimate adds two verified
uploads at once to a local moto S3 server.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
SHARED_GEN = REPO.parent / "shared" / "tools" / "gen_opra_cbbo.py"
RESULTS = HERE / "results" / "options_convert.json"
DAY = "2025-08-07"
REAL_JOB_DAYS, REAL_JOB_MB = 127, 12_800  # the OPRA job this pipeline is for: 12.8 GB of .dbn.zst

NUMPY_READ = """
import sys, struct, numpy as np, zstandard, databento_dbn
dtype = np.dtype(databento_dbn.CBBOMsg._dtypes)
with open(sys.argv[1], "rb") as fh:
    r = zstandard.ZstdDecompressor().stream_reader(fh)
    prefix = r.read(8); r.read(struct.unpack("<I", prefix[4:])[0])
    n = 0
    while block := r.read(dtype.itemsize * 262144):
        n += len(np.frombuffer(block, dtype=dtype))
print(n)
"""
# the alternative order: the whole file sorted (two passes through a spill file); the CLI default is
# sort="row_group" (each row group sorted, one pass)
FILE_SORT = ("import sys; from cxq_data.options.dbn_convert import convert_dbn; "
             "convert_dbn(sys.argv[1], sys.argv[2], sort='file')")
DATABENTO = "import sys, databento; databento.DBNStore.from_file(sys.argv[1]).to_parquet(sys.argv[2])"


def _timed(cmd: list[str]) -> dict[str, float]:
    """Run ``cmd`` under /usr/bin/time -v; return wall, cpu (user+sys) seconds and peak RSS MB."""
    timer = ["/usr/bin/time", "-v"] if Path("/usr/bin/time").exists() else []
    started = time.perf_counter()
    proc = subprocess.run(timer + cmd, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed: {proc.stderr[-2000:]}")
    out = {"wall_s": wall}
    if timer:
        def grab(label: str) -> float:
            return float(re.search(rf"{re.escape(label)}: ([\d.]+)", proc.stderr).group(1))  # type: ignore[union-attr]
        out["cpu_s"] = grab("User time (seconds)") + grab("System time (seconds)")
        out["peak_rss_mb"] = grab("Maximum resident set size (kbytes)") / 1024
    return out


def _median(runs: list[dict[str, float]]) -> dict[str, float]:
    keys = runs[0].keys()
    med = {k: round(statistics.median(r[k] for r in runs), 3) for k in keys}
    med["wall_s_min"] = round(min(r["wall_s"] for r in runs), 3)
    med["runs"] = len(runs)
    return med


def _cxq_cmd(src: Path, dst: Path) -> list[str]:
    return [sys.executable, "-c", "from cxq_data.cli import main; main()", "options", "convert", str(src), str(dst),
            "--no-progress"]


def generate(kind: str, out: Path) -> Path:
    args = {"standard": [], "heavy": ["--instruments", "12000", "--density", "0.95"]}[kind]
    target = out / kind / f"opra-pillar-{DAY.replace('-', '')}.cbbo-1m.dbn.zst"
    if target.exists():
        return target
    if SHARED_GEN.exists():
        subprocess.run([sys.executable, str(SHARED_GEN), "--date", DAY, "--out", str(target.parent), *args],
                       check=True, capture_output=True)
    else:  # the project's own generator at a comparable size
        from cxq_data.options.synth import write_cbbo_day

        instruments = 12000 if kind == "heavy" else 8000
        write_cbbo_day(target, dt.date.fromisoformat(DAY), instruments=instruments, minutes=390)
    return target


def bench_file(src: Path, work: Path, repeat: int, baseline_repeat: int) -> dict:
    runs: dict[str, list[dict[str, float]]] = {"cxq_convert": [], "cxq_convert_file_sort": [], "numpy_read": [],
                                               "databento_to_parquet": []}
    for i in range(max(repeat, baseline_repeat)):  # interleaved, so load spikes hit every step alike
        if i < repeat:
            runs["cxq_convert"].append(_timed(_cxq_cmd(src, work / "cxq.parquet")))
            runs["cxq_convert_file_sort"].append(
                _timed([sys.executable, "-c", FILE_SORT, str(src), str(work / "cxq_file.parquet")]))
            runs["numpy_read"].append(_timed([sys.executable, "-c", NUMPY_READ, str(src)]))
        if i < baseline_repeat:
            runs["databento_to_parquet"].append(_timed([sys.executable, "-c", DATABENTO, str(src), str(work / "db.parquet")]))
    res = {k: _median(v) for k, v in runs.items()}
    import pyarrow.parquet as pq

    rows = pq.read_metadata(work / "cxq.parquet").num_rows
    cxq, base, npy = res["cxq_convert"], res["databento_to_parquet"], res["numpy_read"]
    whole = res["cxq_convert_file_sort"]
    return {
        "input": str(src), "input_mb": round(src.stat().st_size / 1e6, 1), "records": rows,
        "cxq_parquet_mb": round((work / "cxq.parquet").stat().st_size / 1e6, 1),
        "cxq_file_sort_parquet_mb": round((work / "cxq_file.parquet").stat().st_size / 1e6, 1),
        "databento_parquet_mb": round((work / "db.parquet").stat().st_size / 1e6, 1),
        "steps": res,
        "speedup_vs_to_parquet_wall": round(base["wall_s"] / cxq["wall_s"], 2),
        "speedup_vs_to_parquet_cpu": round(base["cpu_s"] / cxq["cpu_s"], 2) if "cpu_s" in cxq else None,
        "slowdown_vs_numpy_read_wall": round(cxq["wall_s"] / npy["wall_s"], 2),
        "slowdown_vs_numpy_read_cpu": round(cxq["cpu_s"] / npy["cpu_s"], 2) if "cpu_s" in cxq else None,
        "cxq_records_per_s_wall": round(rows / cxq["wall_s"]),
        "file_sort_speedup_vs_to_parquet_wall": round(base["wall_s"] / whole["wall_s"], 2),
        "file_sort_slowdown_vs_numpy_read_wall": round(whole["wall_s"] / npy["wall_s"], 2),
    }


def parallel_pair(src: Path, work: Path) -> float:
    """Wall seconds for two conversions of ``src`` running at once (the 2-core job layout)."""
    started = time.perf_counter()
    procs = [subprocess.Popen(_cxq_cmd(src, work / f"par{i}.parquet"), stdout=subprocess.DEVNULL) for i in range(2)]
    if any(p.wait() for p in procs):
        raise RuntimeError("parallel conversion failed")
    return time.perf_counter() - started


def upload_pair_seconds(parquet: Path) -> float:
    """Wall seconds for two verified uploads of ``parquet`` at once to a local S3 server (moto, 127.0.0.1).

    Uses the pipeline's own ``upload_verified`` (digests, put, verification read-back).
    """
    import logging
    import socket
    from concurrent.futures import ThreadPoolExecutor

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no per-request log lines

    from cxq_data.options.s3 import S3Settings, make_client, upload_verified

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        settings = S3Settings(bucket="bench", endpoint_url=f"http://127.0.0.1:{port}", access_key_id="x",
                              secret_access_key="y")
        client = make_client(settings)
        client.create_bucket(Bucket="bench")
        started = time.perf_counter()
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda i: upload_verified(client, parquet, settings=settings, key=f"d{i}/data.parquet"),
                          range(2)))
        return time.perf_counter() - started
    finally:
        server.stop()


def _job_estimate(results: dict, inputs: dict[str, Path], biggest: Path, pair_wall: float,
                  upload_wall: float) -> dict:
    """127 days, 2 days at a time (convert, then upload) on 2 cores, scaled by size to the job's average
    day (101 MB of .dbn.zst).

    Two figures: the measured wall of a parallel pair (includes whatever else loads the box) and the
    CPU-bound figure (CPU-s per day / 2 cores), which is what an otherwise idle 2-core box would see.
    """
    mb_day = biggest.stat().st_size / 1e6
    scale = (REAL_JOB_MB / REAL_JOB_DAYS) / mb_day
    name = next(k for k, v in inputs.items() if v == biggest)
    cpu_day = results["days"][name]["steps"]["cxq_convert"].get("cpu_s", 0.0) * scale
    pairs = REAL_JOB_DAYS / 2
    return {
        "basis": (f"two conversions of {biggest.name} ({mb_day:.1f} MB) in parallel took {pair_wall:.2f} s wall; "
                  f"two verified uploads of its Parquet to a local moto S3 server took {upload_wall:.2f} s"),
        "avg_real_day_mb": round(REAL_JOB_MB / REAL_JOB_DAYS, 1),
        "minutes_for_127_days_2_parallel": round(pair_wall * scale * pairs / 60, 1),
        "minutes_for_127_days_2_parallel_with_upload": round((pair_wall + upload_wall) * scale * pairs / 60, 1),
        "minutes_for_127_days_cpu_bound_2_cores": round(cpu_day * REAL_JOB_DAYS / 2 / 60, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--input", type=Path, help="benchmark this .dbn.zst instead of generating days")
    ap.add_argument("--generate", action="store_true", help="generate the standard day (default without --input)")
    ap.add_argument("--heavy", action="store_true", help="also the heavy day (12k instruments, density 0.95)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of cxq convert and the numpy read (median)")
    ap.add_argument("--baseline-repeat", type=int, default=3, help="runs of databento to_parquet (slow)")
    ap.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "cxq-bench-opra",
                    help="where generated days are kept between runs")
    a = ap.parse_args(argv)
    a.cache.mkdir(parents=True, exist_ok=True)
    inputs = {"input": a.input} if a.input else {"standard": generate("standard", a.cache)}
    if a.heavy and not a.input:
        inputs["heavy"] = generate("heavy", a.cache)
    results: dict = {"machine": {"cpus": os.cpu_count(), "load_avg_start": os.getloadavg()},
                     "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "days": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in inputs.items():
            work = Path(tmp) / name
            work.mkdir()
            results["days"][name] = bench_file(src, work, a.repeat, a.baseline_repeat)
            print(json.dumps({name: results["days"][name]}, indent=1), flush=True)
        biggest = max(inputs.values(), key=lambda p: p.stat().st_size)
        pair = parallel_pair(biggest, Path(tmp))
        upload = upload_pair_seconds(Path(tmp) / "par0.parquet")
    results["job_estimate"] = _job_estimate(results, inputs, biggest, pair, upload)
    results["machine"]["load_avg_end"] = os.getloadavg()
    for name, day in results["days"].items():
        cxq = day["steps"]["cxq_convert"]
        day["goals"] = {
            "speedup_ge_8x_vs_to_parquet_wall": day["speedup_vs_to_parquet_wall"] >= 8,
            "within_4x_of_numpy_read_wall": day["slowdown_vs_numpy_read_wall"] <= 4,
            "peak_rss_lt_400mb": cxq.get("peak_rss_mb", 0) < 400,
            "file_sort_speedup_ge_8x": day["file_sort_speedup_vs_to_parquet_wall"] >= 8,
            "file_sort_within_4x_of_numpy": day["file_sort_slowdown_vs_numpy_read_wall"] <= 4,
            "file_sort_peak_rss_lt_400mb": day["steps"]["cxq_convert_file_sort"].get("peak_rss_mb", 0) < 400,
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results["job_estimate"], indent=1))
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
