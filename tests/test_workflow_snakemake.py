"""The Snakemake workflow end to end: file targets, no-op reruns, and rebuilding only what a change touches.

The workflow and the package are copied into a temp folder (see ``workflow_support``), so the test can
edit a normalizer the way a developer would, without touching the repository.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from workflow_support import STOOQ_CSV, import_sample, make_workflow, run_snakemake

from cxq_data.ingest.importer import import_file
from cxq_data.paths import DataLayout
from cxq_data.workflow import bucket_of


def _planned(work: Path, env: dict[str, str], target: str) -> list[tuple[str, int]]:
    """(source, bucket) of every process job a dry run plans."""
    out = run_snakemake(work, env, "-n", target)
    jobs = []
    for block in out.split("rule process_bucket:")[1:]:
        wildcards = dict(re.findall(r"(\w+)=([\w.^-]+)", block.split("wildcards:", 1)[1].splitlines()[0]))
        jobs.append((wildcards["source"], int(wildcards["bucket"])))
    return sorted(set(jobs))


def _mtimes(layout: DataLayout, *pairs: tuple[str, str]) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for sym, src in pairs
            for p in sorted(layout.symbol_source_dir(sym, src).rglob("*.parquet"))}


@pytest.mark.slow
def test_workflow_builds_lake_and_rebuilds_only_what_changed(tmp_path: Path) -> None:
    layout = DataLayout(tmp_path / "data")
    import_sample(layout, tmp_path)
    work, env = make_workflow(tmp_path)

    run_snakemake(work, env, "all")
    part = layout.partition_file("AAA", "stooq", 2024)
    assert part.exists() and layout.partition_file("AAA", "vendorx", 2023).exists()
    assert layout.duckdb_path.exists()
    serving = json.loads((layout.state / "lake" / "serving.json").read_text())
    assert serving  # the marker records what was served
    out = subprocess.run([sys.executable, "-m", "cxq_data", "query", "sql",
                          "SELECT source, count(*) AS n FROM daily GROUP BY source ORDER BY source",
                          "--format", "json"], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [{"source": "stooq", "n": 28}, {"source": "vendorx", "n": 4}]

    # Everything is up to date: nothing to do.
    assert _planned(work, env, "all") == []
    assert "Nothing to be done" in run_snakemake(work, env, "-n", "all")

    # A normalizer fix (here: the generic CSV normalizer) reruns that source's bucket(s) only, and
    # rewrites nothing of the other source.
    untouched = _mtimes(layout, ("AAA", "stooq"), ("BBB", "stooq"))
    assert len(untouched) == 2
    csv_normalizer = tmp_path / "pkg/cxq_data/normalize/csvfile.py"
    csv_normalizer.write_text(csv_normalizer.read_text() + "\n# a comment or a lint fix is not a code change\n")
    assert _planned(work, env, "all") == []
    csv_normalizer.write_text(csv_normalizer.read_text() + "\n_FIX = 1  # stands in for a code change (comments do not count)\n")
    assert _planned(work, env, "all") == [("vendorx", bucket_of("AAA"))]
    run_snakemake(work, env, "all")
    assert _mtimes(layout, ("AAA", "stooq"), ("BBB", "stooq")) == untouched

    # A new fetch (new raw file) of one symbol reruns its bucket, and only that symbol's partitions
    # change: the other symbols of the bucket are recognised as up to date and left alone.
    assert bucket_of("AAA") == bucket_of("BBB")  # one bucket: the job reruns for both symbols
    before_aaa = _mtimes(layout, ("AAA", "stooq"), ("AAA", "vendorx"))
    newer = tmp_path / "BBB2.csv"
    newer.write_text(STOOQ_CSV + "2024-01-22,40,41,39,40.5,999\n")
    import_file(layout, newer, "stooq", "BBB")
    assert _planned(work, env, "all") == [("stooq", bucket_of("BBB"))]
    run_snakemake(work, env, "all")
    assert _mtimes(layout, ("BBB", "stooq")) != {k: v for k, v in untouched.items() if "BBB" in k}
    assert _mtimes(layout, ("AAA", "stooq"), ("AAA", "vendorx")) == before_aaa
    assert _planned(work, env, "all") == []


@pytest.mark.slow
def test_options_upload_target_uploads_each_day_once(tmp_path: Path, moto_endpoint: str) -> None:
    """`snakemake options_upload`: per-date .dbn.zst -> verified S3 object + marker; a rerun does nothing."""
    from options_support import DATES, batch_zip
    from s3servers import ACCESS_KEY, SECRET_KEY, make_client, new_bucket

    layout = DataLayout(tmp_path / "data")
    zip_dir = layout.raw / "databento"
    zip_dir.mkdir(parents=True)
    batch_zip(zip_dir)
    work, env = make_workflow(tmp_path)
    bucket = new_bucket(moto_endpoint)
    env.update({"S3_ENDPOINT_URL": moto_endpoint, "S3_BUCKET_NAME": bucket, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"})

    run_snakemake(work, env, "options_upload")
    client = make_client(moto_endpoint)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"options/cbbo-1m/underlying=SPY/date={d}/data.parquet" for d in DATES]
    for d in DATES:
        marker = json.loads((layout.state / "options/cbbo-1m/SPY" / f"{d}.json").read_text())
        head = client.head_object(Bucket=bucket, Key=marker["key"])
        assert head["ContentLength"] == marker["size"]
        assert SECRET_KEY not in json.dumps(marker)
    assert not list((layout.root / "work").rglob("*.dbn.zst"))  # temporary extracts are gone
    assert "Nothing to be done" in run_snakemake(work, env, "-n", "options_upload")

    # the standalone script makes the same objects: same bytes, same origin recorded
    from options_support import settings_for

    from cxq_data.options.pipeline import run_batch
    from cxq_data.options.state import read_marker

    script_layout = DataLayout(tmp_path / "script-data")
    settings = settings_for(moto_endpoint, bucket=bucket, prefix="by-script")
    run_batch(next(zip_dir.glob("*.zip")), settings=settings, layout=script_layout, progress=False)
    for d in DATES:
        by_rule, by_script = read_marker(layout, "SPY", d), read_marker(script_layout, "SPY", d)
        assert (by_rule.sha256, by_rule.size, by_rule.rows) == (by_script.sha256, by_script.size, by_script.rows)
        assert (by_rule.source_file, by_rule.zip_file) == (by_script.source_file, by_script.zip_file)
        assert by_rule.source_file.endswith(".dbn.zst") and not by_rule.source_file.startswith(d)

    # a new destination (S3_PREFIX) makes every day due again: params trigger, then upload there
    env["S3_PREFIX"] = "moved/cbbo"
    assert set(re.findall(r"upload_day\s+(\d+)", run_snakemake(work, env, "-n", "options_upload"))) == {"3"}
    run_snakemake(work, env, "options_upload")
    moved = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="moved/")["Contents"])
    assert moved == [f"moved/cbbo/underlying=SPY/date={d}/data.parquet" for d in DATES]


@pytest.mark.slow
def test_a_symbol_that_fails_to_fetch_does_not_keep_the_others_stale(tmp_path: Path) -> None:
    """One unknown ticker (Stooq: "No data") used to fail its fetch job, so its bucket, the serving
    layer and the views were never built for anyone. Now the others are served, the run still exits 1
    naming it, and the next run retries only that fetch."""
    import yaml

    from cxq_data import query
    from cxq_data.simulator import ProviderSimulator

    work, env = make_workflow(tmp_path)
    config_path = work / "config/config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["universe"] = {"symbols": ["AAPL", "MSFT", "ZZZZ"], "sources": ["stooq"], "start": "2025-01-01",
                          "end": "2025-03-31"}
    config_path.write_text(yaml.safe_dump(config))
    layout = DataLayout(tmp_path / "data")
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--scheduler", "greedy", "all"]
    with ProviderSimulator() as sim:
        env.update({**sim.env(), "STOOQ_API_KEY": "wf-stooq-key"})
        first = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=240, check=False)
        assert first.returncode == 1, first.stdout[-2000:] + first.stderr[-3000:]
        assert "fetch stooq/ZZZZ:" in first.stderr and "process ZZZZ:" in first.stderr
        assert {r["symbol"] for r in query.sql(layout, "SELECT DISTINCT symbol FROM daily")} == {"AAPL", "MSFT"}
        markers = layout.state / "fetch" / "stooq"
        assert not list((markers / "ZZZZ").glob("*.json")) and list((markers / "AAPL").glob("*.json"))
        fetched = {sym: sorted((layout.raw / "stooq" / sym).rglob("*.csv")) for sym in ("AAPL", "MSFT")}
        again = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=240, check=False)
        assert again.returncode == 1 and "fetch stooq/ZZZZ:" in again.stderr
        assert re.search(r"\bfetch\s+1\b", again.stdout + again.stderr)  # only the failed fetch is retried
        assert {sym: sorted((layout.raw / "stooq" / sym).rglob("*.csv")) for sym in fetched} == fetched
    assert "wf-stooq-key" not in (first.stdout + first.stderr + again.stdout + again.stderr)


def test_options_settings_do_not_break_the_daily_targets(tmp_path: Path) -> None:
    """option_markers() ran when the Snakefile was parsed: options.dates without a ZIP, or a half
    downloaded ZIP, failed `make all` although it has nothing to do with options."""
    import yaml

    work, env = make_workflow(tmp_path)
    config_path = work / "config/config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["options"]["dates"] = ["2025-08-07"]
    config_path.write_text(yaml.safe_dump(config))
    (tmp_path / "data" / "raw" / "databento").mkdir(parents=True)
    (tmp_path / "data" / "raw" / "databento" / "OPRA-20250812-PARTIAL0001.zip").write_bytes(b"PK\x03\x04 half")
    run_snakemake(work, env, "-n", "all")  # fine
    cmd = [sys.executable, "-m", "snakemake", "--cores", "1", "-n", "options_upload"]
    options = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert options.returncode != 0 and "OPRA-20250812-PARTIAL0001.zip" in options.stdout + options.stderr


@pytest.mark.slow
def test_with_the_profile_a_rerun_after_the_first_fetch_plans_nothing(tmp_path: Path) -> None:
    """Snakemake's default "input" trigger reran every bucket after a symbol's first fetch (its raw
    folder did not exist when the plan was made); profiles/local leaves that trigger out."""
    import shutil

    import yaml

    from cxq_data.simulator import ProviderSimulator

    work, env = make_workflow(tmp_path)
    shutil.copytree(Path(__file__).parents[1] / "profiles", work / "profiles")
    config_path = work / "config/config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["universe"] = {"symbols": ["AAPL", "MSFT"], "sources": ["stooq"], "start": "2025-01-01",
                          "end": "2025-03-31"}
    config_path.write_text(yaml.safe_dump(config))
    with ProviderSimulator() as sim:
        env.update({**sim.env(), "STOOQ_API_KEY": "wf-stooq-key"})
        run_snakemake(work, env, "--profile", "profiles/local", "all")
        assert "Nothing to be done" in run_snakemake(work, env, "--profile", "profiles/local", "-n", "all")
