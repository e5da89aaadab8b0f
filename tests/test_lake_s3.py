"""The library side of S3 default storage: verified object I/O, the write-once raw push, a process job
against S3 only (through a link that corrupts a body on SeaweedFS, which checks Content-MD5)."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from options_support import settings_for
from s3servers import FaultProxy, Faults, make_client, new_bucket
from workflow_support import STOOQ_CSV, import_sample

from cxq_data.errors import ConfigError, RawLayerError
from cxq_data.ingest.importer import import_file
from cxq_data.lake_batch import process_batch
from cxq_data.lake_s3 import process_bucket_s3
from cxq_data.paths import DataLayout
from cxq_data.raw_s3 import push_raw
from cxq_data.s3_store import ObjectStore, S3ContentMismatch, StorageTarget

ROOT = "lake/data"


def _store(endpoint: str, bucket: str, client: Any = None) -> ObjectStore:
    return ObjectStore(StorageTarget(bucket, ROOT, endpoint, "us-east-1"), client=client,
                       settings=settings_for(endpoint, bucket))


def _layout(tmp_path: Path, *symbols: str) -> DataLayout:
    layout = DataLayout(tmp_path / "data")
    import_sample(layout, tmp_path, symbols, vendor=False)
    return layout


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_storage_target_keys_and_refusals() -> None:
    target = StorageTarget.from_prefix("s3://bkt/some/prefix/", "data", endpoint_url="http://127.0.0.1:9")
    assert (target.bucket, target.root) == ("bkt", "some/prefix/data")
    assert target.url("raw/x") == "s3://bkt/some/prefix/data/raw/x"
    assert StorageTarget.from_params(target.as_params()) == target
    assert StorageTarget.from_prefix("s3://bkt", ".").key("raw/x") == "raw/x"
    for prefix, data in (("s3://bkt/p", "../data"), ("s3://bkt/p", "/abs/data"), ("/bkt/p", "data"), ("s3:///p", "d")):
        with pytest.raises(ConfigError):
            StorageTarget.from_prefix(prefix, data)


class _CorruptFirstGet:
    """A boto3 client whose first GetObject body has one flipped byte (corruption in transit)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.corrupted = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_object(self, **kw: Any) -> Any:
        resp = self._client.get_object(**kw)
        if not self.corrupted:
            self.corrupted += 1
            data = resp["Body"].read()
            resp["Body"] = io.BytesIO(data[:-1] + bytes([data[-1] ^ 1]))
        return resp


def test_get_verifies_what_arrives(moto_endpoint: str, tmp_path: Path) -> None:
    bucket = new_bucket(moto_endpoint)
    store = _store(moto_endpoint, bucket)
    src = tmp_path / "f.bin"
    src.write_bytes(os.urandom(5000))
    store.put(src, "x/f.bin")

    flaky = _CorruptFirstGet(store.client)
    dest = tmp_path / "out" / "f.bin"
    got = _store(moto_endpoint, bucket, client=flaky).get("x/f.bin", dest)
    assert flaky.corrupted == 1 and got == _sha(src.read_bytes()) and dest.read_bytes() == src.read_bytes()

    with pytest.raises(S3ContentMismatch):  # intact, but not the content an index promised
        store.get("x/f.bin", tmp_path / "other.bin", sha256="0" * 64)
    assert not (tmp_path / "other.bin").exists() and not list(tmp_path.glob(".tmp-*"))


def test_push_raw_is_write_once(moto_endpoint: str, tmp_path: Path) -> None:
    layout = _layout(tmp_path, "AAA")
    bucket = new_bucket(moto_endpoint)
    store = _store(moto_endpoint, bucket)
    local = sorted(p.relative_to(layout.root).as_posix() for p in layout.raw.rglob("*") if p.is_file())

    listing = json.loads(push_raw(store, layout, "stooq", ["AAA"], tmp_path / "l.json").read_text())
    assert sorted(store.list("raw/")) == local
    assert sorted(f"raw/stooq/AAA/{name}" for name in listing["files"]["AAA"]) == local
    client = make_client(moto_endpoint)
    types = {r.rsplit(".", 1)[-1]: client.head_object(Bucket=bucket, Key=store.target.key(r))["ContentType"]
             for r in local}
    assert types == {"json": "application/json", "csv": "text/csv"}  # not the options' Parquet type
    stamps = {o["Key"]: o["LastModified"] for o in make_client(moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"]}
    push_raw(store, layout, "stooq", ["AAA"], tmp_path / "l.json")  # nothing new: nothing sent
    assert {o["Key"]: o["LastModified"]
            for o in make_client(moto_endpoint).list_objects_v2(Bucket=bucket)["Contents"]} == stamps

    # A data file whose manifest is not written yet is not pushed (the manifest is the record).
    pending = layout.raw_dir("stooq", "AAA") / "20990101T000000000000Z-000000000000.csv"
    pending.write_text("x")
    push_raw(store, layout, "stooq", ["AAA"], tmp_path / "l.json")
    assert sorted(store.list("raw/")) == local
    pending.unlink()

    # The same key with other bytes: refused, S3 keeps its copy.
    data = layout.root / next(r for r in local if not r.endswith(".manifest.json"))
    data.write_bytes(data.read_bytes() + b"\n")
    with pytest.raises(RawLayerError, match="write-once"):
        push_raw(store, layout, "stooq", ["AAA"], tmp_path / "l.json")


def test_a_symbol_whose_raw_file_is_damaged_in_s3_fails_alone(moto_endpoint: str, tmp_path: Path) -> None:
    layout = _layout(tmp_path, "AAA", "BBB")
    bucket = new_bucket(moto_endpoint)
    store = _store(moto_endpoint, bucket)
    push_raw(store, layout, "stooq", ["AAA", "BBB"], tmp_path / "l.json")
    damaged = next(k for k in store.list("raw/stooq/BBB/") if not k.endswith(".manifest.json"))
    store.client.put_object(Bucket=bucket, Key=store.target.key(damaged), Body=b"Date,Open\n")

    out = tmp_path / "bucket.json"
    process_bucket_s3(store, "stooq", ["AAA", "BBB"], out)
    bucket = json.loads(out.read_text())  # the failure is recorded; the run's report fails the run
    assert list(bucket["failed"]) == ["BBB"] and list(bucket["indexes"]) == ["symbol=AAA/source=stooq"]
    assert store.list("processed/symbol=AAA/") and not store.list("processed/symbol=BBB/")


@pytest.mark.seaweedfs
def test_process_job_against_s3_only_through_a_corrupting_link(seaweed_endpoint: str, tmp_path: Path) -> None:
    """Raw push and lake upload with one PUT body corrupted in transit: SeaweedFS rejects it (Content-MD5),
    the uploader sends it again; the lake in S3 equals a local run byte for byte."""
    layout = _layout(tmp_path, "AAA", "BBB")
    bucket = new_bucket(seaweed_endpoint)
    with FaultProxy(seaweed_endpoint, Faults(corrupt_puts=2)) as proxy:
        store = _store(proxy.endpoint, bucket)
        push_raw(store, layout, "stooq", ["AAA", "BBB"], tmp_path / "l.json")
        sync = process_bucket_s3(store, "stooq", ["AAA", "BBB"], tmp_path / "bucket.json",
                                 scratch_parent=tmp_path)
    assert [e["action"] for e in proxy.faults.log].count("corrupt") == 2
    assert sync.processed == ["AAA", "BBB"] and sync.unchanged == [] and len(sync.uploaded) == 4
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("cxq-s3-process-")]  # scratch removed

    process_batch(layout, "stooq", ["AAA", "BBB"], workers=1, progress=False)  # the local reference
    expected = {p.relative_to(layout.root).as_posix(): _sha(p.read_bytes())
                for p in layout.processed.rglob("*") if p.is_file()}
    client = make_client(seaweed_endpoint)
    stored = {k: _sha(client.get_object(Bucket=bucket, Key=store.target.key(k))["Body"].read())
              for k in store.list("processed/")}
    assert stored == expected

    again = process_bucket_s3(_store(seaweed_endpoint, bucket), "stooq", ["AAA", "BBB"], tmp_path / "bucket.json")
    assert again.unchanged == ["AAA", "BBB"] and again.uploaded == [] and again.downloaded == 0


def test_new_raw_file_fetches_only_it_unless_the_lake_in_s3_cannot_be_trusted(moto_endpoint: str,
                                                                            tmp_path: Path) -> None:
    layout = _layout(tmp_path, "AAA", "BBB")
    store = _store(moto_endpoint, new_bucket(moto_endpoint))
    push_raw(store, layout, "stooq", ["AAA", "BBB"], tmp_path / "l.json")
    process_bucket_s3(store, "stooq", ["AAA", "BBB"], tmp_path / "b.json")
    for sym, extra in (("AAA", "2024-01-22,40,41,39,40.5,999\n"), ("BBB", "2024-01-23,41,42,40,41.5,998\n")):
        newer = tmp_path / f"{sym}2.csv"
        newer.write_text(STOOQ_CSV + extra)
        import_file(layout, newer, "stooq", sym)
    push_raw(store, layout, "stooq", ["AAA", "BBB"], tmp_path / "l.json")
    # BBB's partition in S3 no longer matches its index: the append path cannot use it.
    part = "processed/symbol=BBB/source=stooq/year=2024/data.parquet"
    store.client.put_object(Bucket=store.target.bucket, Key=store.target.key(part), Body=b"not parquet")

    sync = process_bucket_s3(store, "stooq", ["AAA", "BBB"], tmp_path / "b.json")
    # AAA: the new raw file + manifest and its one partition; BBB: the same, then its 4 raw files (full path).
    assert sync.processed == ["AAA", "BBB"] and sync.downloaded == 3 + 2 + 4
    process_batch(layout, "stooq", ["AAA", "BBB"], workers=1, progress=False)
    for sym in ("AAA", "BBB"):
        for rel in (f"processed/symbol={sym}/source=stooq/year=2024/data.parquet",
                    f"processed/symbol={sym}/source=stooq/_index.json"):
            stored = store.client.get_object(Bucket=store.target.bucket, Key=store.target.key(rel))["Body"].read()
            assert stored == (layout.root / rel).read_bytes(), rel
