"""``make demo``: the whole job, offline, on an embedded sample — and what it did, printed.

Daily path: a provider simulator on 127.0.0.1 serves the embedded sample in Yahoo's, Alpha Vantage's
and Stooq's real wire formats; the Snakemake workflow fetches it with the real ingestors (raw layer),
processes it (Parquet lake -> serving layer -> DuckDB views); then the CLI queries, validates and
cross-validates it. Options path: a small Databento-style batch ZIP made by the project's own generator
is converted and uploaded to a local S3 server, then validated and queried.

Every step is a real command a user could type; the demo prints it before running it.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEMO_DIR = Path("data/demo")


@dataclass
class Step:
    title: str
    argv: list[str]
    rc: int = 0
    seconds: float = 0.0


@dataclass
class DemoRun:
    data_dir: Path
    env: dict[str, str]
    steps: list[Step] = field(default_factory=list)

    def run(self, title: str, argv: list[str], *, expect: tuple[int, ...] = (0,), show: bool = True) -> Step:
        print(f"\n=== {title}\n$ {shlex.join(argv)}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(argv, env=self.env, cwd=REPO, text=True, check=False,  # exit checked below
                              stdout=None if show else subprocess.DEVNULL, stderr=subprocess.STDOUT)
        step = Step(title, argv, proc.returncode, time.perf_counter() - t0)
        self.steps.append(step)
        if proc.returncode not in expect:
            raise SystemExit(f"demo step failed ({title}): exit {proc.returncode}")
        return step


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "cxq_data", *args]


def _daily(demo: DemoRun) -> None:
    demo.run("Fetch + process + serve the configured universe through Snakemake (make all)",
             [sys.executable, "-m", "snakemake", "all", "--cores", "2", "--scheduler", "greedy", "--quiet", "rules",
              "--configfile", "config/demo.yaml", "--resources", "alphavantage_api=1"])
    demo.run("What the raw layer holds (immutable provider responses + manifests)",
             ["bash", "-c", (f"find {demo.data_dir}/raw -name '*.manifest.json' | sort | head -n 6; "
                             f"echo ...; find {demo.data_dir}/raw -name '*.manifest.json' | wc -l")])
    demo.run("Lake summary", _cli("lake", "summary"))
    demo.run("Latest rows of AAPL from every source", _cli("query", "latest", "--symbol", "AAPL", "--rows", "4"))
    demo.run("SQL over the views", _cli("query", "sql",
             "SELECT source, count(DISTINCT symbol) AS symbols, count(*) AS rows, min(date) AS first, "
             "max(date) AS last FROM daily GROUP BY source ORDER BY source"))
    demo.run("Data quality: the sample carries a deliberate, labelled defect",
             _cli("validate", "run", "--symbols", "MSFT"), expect=(0, 1))
    plot = demo.data_dir / "msft_yfinance_vs_stooq.png"
    demo.run("Cross-validation of one symbol across two sources",
             _cli("crossvalidate", "compare", "--symbol", "MSFT", "--sources", "yfinance,stooq",
                  "--tolerance", "1.0", "--plot", str(plot)))
    demo.run("Agreement matrix", _cli("crossvalidate", "matrix", "--symbols", "AAPL,MSFT,BRK.B",
                                      "--sources", "yfinance,alphavantage,stooq"))


def _options(demo: DemoRun) -> None:
    from cxq_data.options.synth_batch import write_batch_zip

    days = [dt.date(2025, 8, 7), dt.date(2025, 8, 8), dt.date(2025, 8, 11)]
    zip_path = demo.data_dir / "raw" / "databento" / "OPRA-20250811-DEMO000001.zip"
    zip_path.parent.mkdir(parents=True, exist_ok=True)
    write_batch_zip(zip_path, days, instruments=120, minutes=60)
    script = [sys.executable, "scripts/upload_options_to_s3.py", str(zip_path), "--no-progress"]
    demo.run("Options: dry run (plan only)", [*script, "--dry-run", "--dates", "2025-08-07"])
    demo.run("Options: convert + upload + verify every day", script)
    demo.run("Options: rerun = resume (verified days are skipped)", script)
    demo.run("Options: validate S3 against the state markers", [*script, "--validate"])
    demo.run("Options: query the uploaded dataset on S3 with DuckDB",
             _cli("options", "query", "SELECT date, count(*) AS quotes, count(DISTINCT symbol) AS contracts, "
                  "round(avg(ask_px - bid_px), 4) AS avg_spread FROM cbbo GROUP BY date ORDER BY date"))


def run_demo(data_dir: Path = DEMO_DIR) -> int:
    from cxq_data.s3local import LocalS3
    from cxq_data.simulator import ProviderSimulator

    data_dir = (REPO / data_dir).resolve()
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    base_env = {**os.environ, "CXQ_DATA_DIR": str(data_dir), "AV_API_KEY": "demo-av-key",
                "STOOQ_API_KEY": "demo-stooq-key", "PYTHONUNBUFFERED": "1"}
    with ProviderSimulator() as sim, LocalS3() as s3:
        print(f"provider simulator on {sim.base_url}; local S3 (moto) on {s3.endpoint_url}; data in {data_dir}")
        demo = DemoRun(data_dir, {**base_env, **sim.env(), **s3.env()})
        _daily(demo)
        _options(demo)
    _summary(demo)
    return 0


def _summary(demo: DemoRun) -> None:
    print("\n=== What the demo did")
    for i, step in enumerate(demo.steps, 1):
        print(f"{i:2d}. [{step.seconds:5.1f}s] exit {step.rc}  {step.title}")
    print(f"\nEverything is under {demo.data_dir}: raw/, processed/, serving/, state/, cxq.duckdb")
    print(f"Try: CXQ_DATA_DIR={demo.data_dir} .venv/bin/cxq_data query latest --symbol MSFT --source stooq")


def main() -> None:
    sys.exit(run_demo())
