"""Run the packaged Snakemake workflows through a profile (local or Slurm) and compare the results.

This is what ``make cluster-demo`` and the cluster tests share: copy the workflow into a work folder,
seed a data dir (imported CSVs for the daily lake, a synthetic Databento batch ZIP for the options),
run ``snakemake --profile profiles/<name>`` in a subprocess under a hard timeout (Snakemake ignores
SIGTERM while it waits on a cluster, so the timeout kills), and digest what came out so a Slurm run
can be compared byte for byte with a local run of the same inputs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cxq_data.paths import DataLayout

WORKFLOW_FILES = ("Snakefile", "rules", "scripts", "config", "profiles")
DAILY_TARGETS = ("all",)
OPTIONS_TARGETS = ("options_upload",)
DEMO_SYMBOLS = ("AAA", "BBB", "CCC", "DDD", "EEE", "FFF")
DEMO_DAYS = (dt.date(2025, 8, 7), dt.date(2025, 8, 8), dt.date(2025, 8, 11), dt.date(2025, 8, 12))
OPTIONS_ZIP = "raw/databento/OPRA-20250807-CLUSTER01.zip"

_SUBMITTED = re.compile(r"has been submitted with SLURM jobid (\d+) \(log: ([^)]+)\)")
_JOB_STATS_ROW = re.compile(r"^(\w+)\s+(\d+)$")


@dataclass(frozen=True)
class WorkflowRun:
    """One ``snakemake`` invocation: what ran, how long it took, what it printed."""

    profile: str
    targets: tuple[str, ...]
    returncode: int
    seconds: float
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def slurm_jobs(self) -> dict[str, Path]:
        """Slurm job id -> its log file, for every job Snakemake submitted (retries included)."""
        return {jobid: Path(log) for jobid, log in _SUBMITTED.findall(self.output)}

    @property
    def planned_jobs(self) -> dict[str, int]:
        """Snakemake's own 'Job stats' table (rule -> count) from the first plan it printed."""
        stats: dict[str, int] = {}
        lines = self.output.split("Job stats:", 1)[-1].splitlines() if "Job stats:" in self.output else []
        for line in lines[3:]:
            match = _JOB_STATS_ROW.match(line.strip())
            if not match:
                break
            stats[match.group(1)] = int(match.group(2))
        return stats

    def tail(self, chars: int = 4000) -> str:
        return self.output[-chars:]


def copy_workflow(repo: Path, work: Path, data_dir: Path, *, config: Mapping[str, Any] | None = None) -> Path:
    """Copy the workflow files of ``repo`` into ``work`` and point its config at ``data_dir``.

    ``config`` entries replace top-level keys of config/config.yaml (default: no symbols to fetch, so
    the daily workflow processes only what the raw layer already holds; nothing touches the network).
    """
    import yaml

    work.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        src = repo / name
        dst = work / name
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dst)
    values = yaml.safe_load((work / "config/config.yaml").read_text())
    values["data_dir"] = str(data_dir)
    values["universe"] = {"symbols": [], "sources": [], "start": "", "end": ""}
    values["options"] = {**values.get("options", {}), "zip_glob": "raw/databento/OPRA-*.zip", "dates": []}
    values.update(config or {})
    (work / "config/config.yaml").write_text(yaml.safe_dump(values, sort_keys=False))
    return work


def _stooq_csv(symbol: str, start: dt.date, days: int) -> str:
    """A deterministic daily series (business days) that differs per symbol."""
    seed = sum(map(ord, symbol))
    rows, day, i = ["Date,Open,High,Low,Close,Volume"], start, 0
    while i < days:
        if day.weekday() < 5:
            base = 20 + seed % 50 + (i * 7 + seed) % 13 * 0.25
            rows.append(f"{day},{base:.2f},{base + 1:.2f},{base - 1:.2f},{base + 0.5:.2f},{1000 + (i * seed) % 9000}")
            i += 1
        day += dt.timedelta(days=1)
    return "\n".join(rows) + "\n"


def seed_daily(layout: DataLayout, symbols: Sequence[str] = DEMO_SYMBOLS, *, scratch: Path) -> list[str]:
    """Import one Stooq-format CSV per symbol (late 2023 to early 2024: two year partitions each)."""
    from cxq_data.ingest.importer import import_file

    scratch.mkdir(parents=True, exist_ok=True)
    for symbol in symbols:
        csv = scratch / f"{symbol}.csv"
        csv.write_text(_stooq_csv(symbol, dt.date(2023, 11, 1), 90))
        import_file(layout, csv, "stooq", symbol)
    return list(symbols)


def seed_options(layout: DataLayout, days: Sequence[dt.date] = DEMO_DAYS, *, corrupt: str | None = None) -> Path:
    """Write a synthetic Databento OPRA cbbo-1m batch ZIP where the options workflow looks for it."""
    from cxq_data.options.synth_batch import write_batch_zip

    return write_batch_zip(layout.root / OPTIONS_ZIP, list(days), corrupt=corrupt, instruments=12, minutes=8)


def run_workflow(work: Path, profile: str, targets: Iterable[str], *, env: Mapping[str, str] | None = None,
                 extra_args: Sequence[str] = (), timeout_s: float = 300) -> WorkflowRun:
    """``snakemake --profile profiles/<profile> <targets>`` in ``work``, killed (SIGKILL) after ``timeout_s``."""
    targets = tuple(targets)
    cmd = [sys.executable, "-m", "snakemake", "--profile", f"profiles/{profile}", *targets, *extra_args]
    started = time.monotonic()
    # own session: on timeout the whole process group (snakemake and its local jobs) is killed
    proc = subprocess.Popen(cmd, cwd=work, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        output, _ = proc.communicate()
        output += f"\n[cxq_data.cluster] killed after {timeout_s:.0f} s\n"
    return WorkflowRun(profile, targets, proc.returncode, time.monotonic() - started, output)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lake_digests(layout: DataLayout) -> dict[str, str]:
    """sha256 of every processed and serving Parquet file, keyed by its path below the data dir."""
    files = [*layout.processed.rglob("*.parquet"), *layout.serving.rglob("*.parquet")]
    return {str(p.relative_to(layout.root)): _sha256(p) for p in sorted(files)}


def s3_digests(client: Any, bucket: str, prefix: str = "") -> dict[str, str]:
    """sha256 of every object under ``prefix``, keyed by the key below it."""
    digests: dict[str, str] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
            digests[obj["Key"][len(prefix):]] = hashlib.sha256(body).hexdigest()
    return digests


def copy_data(src: DataLayout, dst: Path) -> DataLayout:
    """The same inputs for a second run: ``raw/`` is copied with its bytes (fetched_at included)."""
    shutil.copytree(src.raw, dst / "raw")
    return DataLayout(dst)


@dataclass(frozen=True)
class DemoStep:
    workflow: str
    local: WorkflowRun
    slurm: WorkflowRun
    files: int
    identical: bool


def run_cluster_demo(repo: Path, root: Path, *, say: Any = print, timeout_s: float = 300) -> list[DemoStep]:
    """Daily + options workflows, each run locally and through Slurm on the same inputs; compare bytes.

    Needs a running Slurm (SLURM_CONF) and starts a local S3 server (moto) on 127.0.0.1 for the options.
    """
    from cxq_data.s3local import LocalS3

    seed = DataLayout(root / "seed")
    say(f"seed: {len(seed_daily(seed, scratch=root / 'csv'))} symbols imported, "
        f"options batch ZIP with {len(DEMO_DAYS)} days -> {seed_options(seed).name}")
    steps = []
    with LocalS3(bucket="cxq-cluster-demo") as s3:
        client = _client(s3)
        for name, targets in (("daily", DAILY_TARGETS), ("options", OPTIONS_TARGETS)):
            runs, digests = {}, {}
            for profile in ("local", "slurm"):
                layout = copy_data(seed, root / f"{name}-{profile}" / "data")
                work = copy_workflow(repo, root / f"{name}-{profile}" / "workflow", layout.root)
                env = {**s3.env(), "S3_PREFIX": f"{name}-{profile}"}
                say(f"{name}: snakemake --profile profiles/{profile} {' '.join(targets)}  (in {work})")
                runs[profile] = run_workflow(work, profile, targets, env=env, timeout_s=timeout_s)
                _say_run(say, runs[profile])
                digests[profile] = (lake_digests(layout) if name == "daily"
                                    else s3_digests(client, s3.bucket, f"{name}-{profile}/"))
            same = runs["local"].ok and runs["slurm"].ok and digests["local"] == digests["slurm"]
            steps.append(DemoStep(name, runs["local"], runs["slurm"], len(digests["local"]), same))
            say(f"{name}: {len(digests['local'])} files, Slurm result {'IDENTICAL to' if same else 'DIFFERS from'}"
                " the local run (sha256 of every file)")
    return steps


def _client(s3: Any) -> Any:
    import boto3

    return boto3.client("s3", endpoint_url=s3.endpoint_url, region_name="us-east-1",
                        aws_access_key_id=s3.access_key_id, aws_secret_access_key=s3.secret_access_key)


def _say_run(say: Any, run: WorkflowRun) -> None:
    jobs = ", ".join(f"{rule} {n}" for rule, n in run.planned_jobs.items())
    slurm = f"; {len(run.slurm_jobs)} Slurm jobs ({', '.join(sorted(run.slurm_jobs, key=int))})" if run.slurm_jobs else ""
    say(f"  -> exit {run.returncode} in {run.seconds:.1f} s; jobs: {jobs or 'none'}{slurm}")
    if not run.ok:
        say(run.tail(3000))
