"""The lake with S3 as Snakemake's default storage, run through the real Snakemake against a local S3 server.

`snakemake --default-storage-provider s3 --default-storage-prefix s3://B/lake --storage-s3-endpoint-url URL`
must leave the processed lake under ``lake/data/processed/...`` byte for byte equal to a plain local run,
upload nothing on a rerun, touch only the partitions of a symbol that got a new raw file, and work from
a fresh work folder that sees nothing but S3 (a node that shares no filesystem with the submit host).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
from ingest_support import *
from s3servers import ACCESS_KEY, SECRET_KEY, make_client, new_bucket
from workflow_support import STOOQ_CSV, import_sample, make_workflow, run_snakemake

from cxq_data.ingest.importer import import_file
from cxq_data.paths import DataLayout
from cxq_data.workflow import bucket_of

STOOQ_SYMBOLS = ("AAA", "BBB")  # one bucket


def _raw_input(layout: DataLayout, tmp_path: Path, settings) -> None:
    """Stooq CSVs, a user source, and Yahoo daily (with dividends) + intraday from the provider simulator."""
    from cxq_data.ingest.runner import run_ingest

    import_sample(layout, tmp_path, STOOQ_SYMBOLS)
    assert run_ingest(layout, "yfinance", ["MSFT"], settings=settings, progress=False).ok
    assert run_ingest(layout, "yfinance", ["MSFT"], kind="intraday", interval="5m", settings=settings,
                      progress=False).ok


def _sha_tree(data_dir: Path, sub: str) -> dict[str, str]:
    """sha256 of every file under ``data_dir/sub``, keyed by its path relative to the data dir."""
    return {p.relative_to(data_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((data_dir / sub).rglob("*")) if p.is_file()}


def _s3_tree(client, bucket: str, prefix: str) -> dict[str, str]:
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])]
    return {k.removeprefix("lake/data/"): hashlib.sha256(client.get_object(Bucket=bucket, Key=k)["Body"].read())
            .hexdigest() for k in sorted(keys)}


def _s3_stamps(client, bucket: str, prefix: str) -> dict[str, tuple[str, object]]:
    return {o["Key"]: (o["ETag"], o["LastModified"])
            for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for o in page.get("Contents", [])}


@pytest.mark.slow
def test_processed_lake_with_s3_as_default_storage(tmp_path: Path, moto_endpoint: str, settings) -> None:
    bucket = new_bucket(moto_endpoint)
    client = make_client(moto_endpoint)
    storage = ["--default-storage-provider", "s3", "--default-storage-prefix", f"s3://{bucket}/lake",
               "--storage-s3-endpoint-url", moto_endpoint]
    lake_prefix = "lake/data/processed/"

    # Reference: a plain local run.
    ref, env = make_workflow(tmp_path, "ref", data_dir="data")
    env.update(AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_DEFAULT_REGION="us-east-1")
    ref_layout = DataLayout(ref / "data")
    _raw_input(ref_layout, tmp_path, settings)
    run_snakemake(ref, env, "process")
    expected = _sha_tree(ref_layout.root, "processed")
    assert any("/intraday/" in k for k in expected) and any("/actions/" in k for k in expected)

    # The submit host: same raw files, S3 as default storage, the whole workflow (db mirrors the lake here).
    host, _ = make_workflow(tmp_path, "host", data_dir="data")
    shutil.copytree(ref_layout.raw, host / "data/raw")
    out = run_snakemake(host, env, "all", *storage)
    assert "push_raw" in out and "process_bucket" in out
    assert _s3_tree(client, bucket, lake_prefix) == expected  # the lake in S3 == the local run, byte for byte
    assert _s3_tree(client, bucket, "lake/data/state/lake/") == _sha_tree(ref_layout.root, "state/lake")  # bucket files
    assert _sha_tree(host / "data", "processed") == expected  # the host's mirror, from which db built the views
    assert (host / "data/cxq.duckdb").exists()

    # Nothing changed: nothing to do.
    assert "Nothing to be done" in run_snakemake(host, env, "-n", "all", *storage)

    # One new raw file for BBB: only BBB's partition and index change in S3.
    assert bucket_of("BBB") == bucket_of("AAA")  # a bucket job that also holds unchanged symbols
    before = _s3_stamps(client, bucket, lake_prefix)
    newer = tmp_path / "BBB2.csv"
    newer.write_text(STOOQ_CSV + "2024-01-22,40,41,39,40.5,999\n")
    import_file(ref_layout, newer, "stooq", "BBB")
    shutil.copytree(ref_layout.raw_dir("stooq", "BBB"), host / "data/raw/stooq/BBB/daily", dirs_exist_ok=True)
    run_snakemake(ref, env, "process")
    run_snakemake(host, env, "process", *storage)
    after = _s3_stamps(client, bucket, lake_prefix)
    changed = sorted(k for k in after if before.get(k) != after[k])
    assert changed == [f"{lake_prefix}symbol=BBB/source=stooq/_index.json",
                       f"{lake_prefix}symbol=BBB/source=stooq/year=2024/data.parquet"]
    expected = _sha_tree(ref_layout.root, "processed")
    assert _s3_tree(client, bucket, lake_prefix) == expected

    # A node that shares nothing with the host: a fresh work folder, an empty data dir, only S3. With the
    # bucket files gone every process job runs there: the pairs whose lake objects were deleted are rebuilt
    # from the raw files in S3, the others are found up to date and not uploaded again.
    kept = {k: v for k, v in after.items() if "source=stooq" in k}
    gone = [k for k in after if k not in kept] + list(_s3_stamps(client, bucket, "lake/data/state/lake/"))
    for key in gone:
        client.delete_object(Bucket=bucket, Key=key)
    node, _ = make_workflow(tmp_path, "node", data_dir="data")
    out = run_snakemake(node, env, "process", *storage)
    assert out.count("rule process_bucket") == 3
    assert _s3_tree(client, bucket, lake_prefix) == expected
    assert {k: v for k, v in _s3_stamps(client, bucket, lake_prefix).items() if k in kept} == kept
    assert not (node / "data/raw").exists() and not (node / "data/processed").exists()
    logs = _s3_stamps(client, bucket, "lake/data/logs/")
    assert logs and not any(SECRET_KEY.encode() in client.get_object(Bucket=bucket, Key=k)["Body"].read()
                            for k in logs)
