"""The daily and options workflows through snakemake-executor-plugin-slurm on a real single-node Slurm.

Each test runs the same workflow twice on copies of the same inputs, once with profiles/local and once
with profiles/slurm, and demands identical bytes: processed + serving Parquet for the daily lake, the
sha256 of every uploaded object for the options. A deliberately broken day shows a failed Slurm job
being resubmitted and reported with its Slurm log.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from s3servers import ACCESS_KEY, SECRET_KEY, make_client, new_bucket

from cxq_data.cluster import (
    DAILY_TARGETS,
    DEMO_DAYS,
    OPTIONS_TARGETS,
    copy_data,
    copy_workflow,
    lake_digests,
    run_workflow,
    s3_digests,
    seed_daily,
    seed_options,
)
from cxq_data.paths import DataLayout
from cxq_data.workflow import buckets

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(600)]
REPO = Path(__file__).resolve().parents[2]
RUN_TIMEOUT_S = 240  # per snakemake run; the whole cluster suite has a hard limit in make test-cluster


def _s3_env(endpoint: str, bucket: str, prefix: str) -> dict[str, str]:
    return {"S3_ENDPOINT_URL": endpoint, "S3_BUCKET_NAME": bucket, "S3_PREFIX": prefix,
            "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"}


def _two_runs(tmp_path: Path, seed: DataLayout, targets, env_for, slurm_env, slurm_args=()):
    runs = {}
    for profile in ("local", "slurm"):
        layout = copy_data(seed, tmp_path / f"data-{profile}")
        work = copy_workflow(REPO, tmp_path / f"wf-{profile}", layout.root)
        env = {**env_for(profile), **(slurm_env if profile == "slurm" else {})}
        run = run_workflow(work, profile, targets, env=env, timeout_s=RUN_TIMEOUT_S,
                           extra_args=slurm_args if profile == "slurm" else ())
        assert run.ok, f"{profile} run failed:\n{run.tail()}"
        runs[profile] = (run, layout)
    return runs


def test_daily_workflow_on_slurm_equals_local_run(tmp_path: Path, slurm_env: dict[str, str]) -> None:
    seed = DataLayout(tmp_path / "seed")
    symbols = seed_daily(seed, scratch=tmp_path / "csv")
    runs = _two_runs(tmp_path, seed, DAILY_TARGETS, lambda p: {}, slurm_env)
    (local, local_layout), (slurm, slurm_layout) = runs["local"], runs["slurm"]

    local_files, slurm_files = lake_digests(local_layout), lake_digests(slurm_layout)
    assert len([f for f in local_files if f.startswith("processed/")]) == 2 * len(symbols)  # 2 years each
    assert any(f.startswith("serving/") for f in local_files)
    assert slurm_files == local_files
    # one Slurm job per non-empty bucket of symbols, plus the serving rebuild
    n_buckets = len(buckets(("stooq", s) for s in symbols))
    assert slurm.planned_jobs["process_bucket"] == n_buckets
    # .snakemake/slurm_logs/<group_or_rule>/[<wildcards>/]<jobid>.log
    logs = sorted(p.parts[p.parts.index("slurm_logs") + 1] for p in slurm.slurm_jobs.values())
    assert logs == ["rule_db"] + ["rule_process_bucket"] * n_buckets
    assert not local.slurm_jobs


def test_options_workflow_on_slurm_uploads_the_same_objects(tmp_path: Path, slurm_env: dict[str, str],
                                                            moto_endpoint: str) -> None:
    seed = DataLayout(tmp_path / "seed")
    seed_options(seed)
    bucket = new_bucket(moto_endpoint)
    runs = _two_runs(tmp_path, seed, OPTIONS_TARGETS, lambda p: _s3_env(moto_endpoint, bucket, f"opra-{p}"),
                     slurm_env, slurm_args=("--group-components", "options=2"))
    client = make_client(moto_endpoint)
    local_objects = s3_digests(client, bucket, "opra-local/")
    slurm_objects = s3_digests(client, bucket, "opra-slurm/")
    assert sorted(local_objects) == [f"underlying=SPY/date={d}/data.parquet" for d in DEMO_DAYS]
    assert slurm_objects == local_objects
    slurm = runs["slurm"][0]
    assert len(slurm.slurm_jobs) == len(DEMO_DAYS) // 2  # two dates (extract + upload each) per Slurm job
    for day in DEMO_DAYS:
        assert (runs["slurm"][1].state / f"options/cbbo-1m/SPY/{day}.json").exists()
        assert not (runs["slurm"][1].root / f"work/options/{day}.dbn.zst").exists()  # temp() removed


def test_failing_job_is_retried_and_reported_with_its_slurm_log(tmp_path: Path, slurm_env: dict[str, str],
                                                               moto_endpoint: str) -> None:
    layout = DataLayout(tmp_path / "data")
    days = DEMO_DAYS[:2]
    seed_options(layout, days, corrupt="bad_hash")  # the last day's member fails its manifest hash
    bad_day = str(days[-1])
    work = copy_workflow(REPO, tmp_path / "wf", layout.root)
    bucket = new_bucket(moto_endpoint)
    run = run_workflow(work, "slurm", OPTIONS_TARGETS, env={**slurm_env, **_s3_env(moto_endpoint, bucket, "o")},
                       extra_args=("--group-components", "options=1"), timeout_s=RUN_TIMEOUT_S)

    assert run.returncode == 1, run.tail()
    # keep-going: every good day was uploaded and marked
    objects = s3_digests(make_client(moto_endpoint), bucket, "o/")
    assert sorted(objects) == [f"underlying=SPY/date={d}/data.parquet" for d in days[:-1]]
    # one submission for the good day; the bad day's group job is resubmitted (retries: upload_day's 2)
    attempts = len(run.slurm_jobs) - 1
    assert attempts == 3
    assert run.output.count("Trying to restart job") == attempts - 1
    failed_logs = [log for log in run.slurm_jobs.values() if log.exists()]  # successful jobs' logs are deleted
    assert len(failed_logs) == attempts
    for log in failed_logs:
        assert f"date={bad_day}" in log.read_text() or bad_day in log.read_text()
        # Snakemake's error report names the Slurm log of the failed job
        assert re.search(rf"log: {re.escape(str(log))} \(check log file", run.output), log
    rule_log = layout.logs / f"options/extract-{bad_day}.log"
    assert "manifest hash" in rule_log.read_text()
    assert not (layout.state / f"options/cbbo-1m/SPY/{bad_day}.json").exists()
