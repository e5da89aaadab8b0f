"""The Snakemake workflow end to end: file targets, no-op reruns, and rebuilding only what a change touches.

The workflow and the package are copied into a temp folder (PYTHONPATH points at the copy), so the
test can edit a normalizer the way a developer would, without touching the repository.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import cxq_data
from cxq_data.ingest.importer import import_file
from cxq_data.paths import DataLayout
from cxq_data.workflow import bucket_of

REPO = Path(__file__).resolve().parents[1]

STOOQ_CSV = "Date,Open,High,Low,Close,Volume\n" + "\n".join(
    f"2024-01-{d:02d},{10 + d},{11 + d},{9 + d},{10.5 + d},{1000 * d}" for d in range(2, 20) if d not in (6, 7, 13, 14)
) + "\n"
VENDOR_CSV = "Date,Open,High,Low,Close,Adj Close,Volume\n" + "\n".join(
    f"2023-12-{d:02d},{20 + d},{21 + d},{19 + d},{20.5 + d},{20.4 + d},{500 * d}" for d in (27, 28, 29)
) + "\n2024-01-02,50,51,49,50.5,50.4,700\n"


def _workflow(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "wf"
    work.mkdir()
    for name in ("Snakefile", "rules", "scripts", "config"):
        src = REPO / name
        (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
    pkg = tmp_path / "pkg"
    shutil.copytree(Path(cxq_data.__file__).parent, pkg / "cxq_data", ignore=shutil.ignore_patterns("__pycache__"))
    config = yaml.safe_load((work / "config/config.yaml").read_text())
    config["data_dir"] = str(tmp_path / "data")
    config["universe"] = {"symbols": [], "sources": [], "start": "", "end": ""}
    (work / "config/config.yaml").write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(pkg), "CXQ_DATA_DIR": str(tmp_path / "data")}
    return work, env


def _snakemake(work: Path, env: dict[str, str], *args: str) -> str:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--scheduler", "greedy", *args]
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    return proc.stdout + proc.stderr


def _planned(work: Path, env: dict[str, str], target: str) -> list[tuple[str, int]]:
    """(source, bucket) of every process job a dry run plans."""
    out = _snakemake(work, env, "-n", target)
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
    for sym in ("AAA", "BBB"):
        f = tmp_path / f"{sym}.csv"
        f.write_text(STOOQ_CSV)
        import_file(layout, f, "stooq", sym)
    vendor = tmp_path / "vendor.csv"
    vendor.write_text(VENDOR_CSV)
    import_file(layout, vendor, "vendorx", "AAA")
    work, env = _workflow(tmp_path)

    _snakemake(work, env, "all")
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
    assert "Nothing to be done" in _snakemake(work, env, "-n", "all")

    # A normalizer fix (here: the generic CSV normalizer) reruns that source's bucket(s) only, and
    # rewrites nothing of the other source.
    untouched = _mtimes(layout, ("AAA", "stooq"), ("BBB", "stooq"))
    assert len(untouched) == 2
    csv_normalizer = tmp_path / "pkg/cxq_data/normalize/csvfile.py"
    csv_normalizer.write_text(csv_normalizer.read_text() + "\n# fix: a comment stands in for a code change\n")
    assert _planned(work, env, "all") == [("vendorx", bucket_of("AAA"))]
    _snakemake(work, env, "all")
    assert _mtimes(layout, ("AAA", "stooq"), ("BBB", "stooq")) == untouched

    # A new fetch (new raw file) of one symbol reruns its bucket, and only that symbol's partitions
    # change: the other symbols of the bucket are recognised as up to date and left alone.
    assert bucket_of("AAA") == bucket_of("BBB")  # one bucket: the job reruns for both symbols
    before_aaa = _mtimes(layout, ("AAA", "stooq"), ("AAA", "vendorx"))
    newer = tmp_path / "BBB2.csv"
    newer.write_text(STOOQ_CSV + "2024-01-22,40,41,39,40.5,999\n")
    import_file(layout, newer, "stooq", "BBB")
    assert _planned(work, env, "all") == [("stooq", bucket_of("BBB"))]
    _snakemake(work, env, "all")
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
    work, env = _workflow(tmp_path)
    bucket = new_bucket(moto_endpoint)
    env.update({"S3_ENDPOINT_URL": moto_endpoint, "S3_BUCKET_NAME": bucket, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_DEFAULT_REGION": "us-east-1"})

    _snakemake(work, env, "options_upload")
    client = make_client(moto_endpoint)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"])
    assert keys == [f"options/cbbo-1m/underlying=SPY/date={d}/data.parquet" for d in DATES]
    for d in DATES:
        marker = json.loads((layout.state / "options/cbbo-1m/SPY" / f"{d}.json").read_text())
        head = client.head_object(Bucket=bucket, Key=marker["key"])
        assert head["ContentLength"] == marker["size"]
        assert SECRET_KEY not in json.dumps(marker)
    assert not list((layout.root / "work").rglob("*.dbn.zst"))  # temporary extracts are gone
    assert "Nothing to be done" in _snakemake(work, env, "-n", "options_upload")
