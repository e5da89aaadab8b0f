"""Verified uploads against real S3 servers on 127.0.0.1, with faults injected by a loopback proxy.

moto stores whatever arrives (it ignores a wrong Content-MD5), so a corrupted body is only caught
by our own post-upload check; SeaweedFS verifies Content-MD5/SHA-256 and answers BadDigest. Both
run with AWS_REQUEST_CHECKSUM_CALCULATION=when_required, so boto3 adds no CRC32 of its own.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from options_support import settings_for
from s3servers import FaultProxy, Faults, make_client

from cxq_data.options.s3 import MIB, S3UploadError, compute_digests, upload_verified
from cxq_data.options.s3 import make_client as cxq_client

SERVERS = ["moto_endpoint", "seaweed_endpoint"]


@pytest.fixture(autouse=True)
def _no_sdk_checksums(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")


def _file(tmp_path: Path, size: int) -> Path:
    path = tmp_path / f"f{size}.parquet"
    path.write_bytes(os.urandom(size))
    return path


def _stored(endpoint: str, bucket: str, key: str) -> bytes:
    return make_client(endpoint).get_object(Bucket=bucket, Key=key)["Body"].read()


SMALL = {"multipart_threshold": 6 * MIB, "part_size": 5 * MIB}


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("size", [0, 3000, 11 * MIB])
def test_upload_is_verified_single_and_multipart(request, tmp_path: Path, server: str, size: int) -> None:
    endpoint = request.getfixturevalue(server)
    settings = settings_for(endpoint, **SMALL)
    path = _file(tmp_path, size)
    remote = upload_verified(cxq_client(settings), path, settings=settings, key="t/data.parquet")
    assert remote.parts == (3 if size > 6 * MIB else 1)
    assert remote.verified_by == "etag" and remote.attempts == 1
    assert _stored(endpoint, settings.bucket, "t/data.parquet") == path.read_bytes()
    head = make_client(endpoint).head_object(Bucket=settings.bucket, Key="t/data.parquet")
    assert head["Metadata"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert head["ETag"].strip('"') == compute_digests(path, **{k: v for k, v in SMALL.items()}).expected_etag()


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("size", [3000, 11 * MIB])
def test_body_corrupted_in_transit_is_rejected_and_retried(request, tmp_path: Path, server: str, size: int) -> None:
    endpoint = request.getfixturevalue(server)
    path = _file(tmp_path, size)
    with FaultProxy(endpoint, Faults(corrupt_puts=1)) as proxy:
        settings = settings_for(proxy.endpoint, bucket=settings_for(endpoint).bucket, **SMALL)
        remote = upload_verified(cxq_client(settings), path, settings=settings, key="c/data.parquet")
    assert [e["action"] for e in proxy.faults.log].count("corrupt") == 1
    assert remote.attempts == 2
    assert _stored(endpoint, settings.bucket, "c/data.parquet") == path.read_bytes()


def test_persistent_corruption_fails_and_leaves_no_object(moto_endpoint: str, tmp_path: Path) -> None:
    path = _file(tmp_path, 5000)
    bucket = settings_for(moto_endpoint).bucket
    with FaultProxy(moto_endpoint, Faults(corrupt_puts=10**6)) as proxy:
        settings = settings_for(proxy.endpoint, bucket=bucket, max_attempts=3)
        with pytest.raises(S3UploadError, match="not verified after 3 attempts"):
            upload_verified(cxq_client(settings), path, settings=settings, key="p/data.parquet")
    assert "Contents" not in make_client(moto_endpoint).list_objects_v2(Bucket=bucket)


@pytest.mark.parametrize("faults", [Faults(fail_every=2, fail_burst=1), Faults(fail_every=3, fail_burst=2),
                                    Faults(drop_every=2)], ids=["503-every-2nd", "503-bursts", "dropped-conns"])
def test_throttling_and_dropped_connections_are_survived(moto_endpoint: str, tmp_path: Path, faults: Faults) -> None:
    path = _file(tmp_path, 16 * MIB)
    bucket = settings_for(moto_endpoint).bucket
    with FaultProxy(moto_endpoint, faults) as proxy:
        settings = settings_for(proxy.endpoint, bucket=bucket, **SMALL)
        upload_verified(cxq_client(settings), path, settings=settings, key="f/data.parquet")
    injected = [e["action"] for e in proxy.faults.log if e["action"] in ("503", "drop")]
    assert len(injected) >= 2
    assert _stored(moto_endpoint, bucket, "f/data.parquet") == path.read_bytes()


def test_non_retryable_error_is_reported_without_secrets(moto_endpoint: str, tmp_path: Path) -> None:
    settings = settings_for(moto_endpoint, bucket="no-such-bucket-cxq")
    with pytest.raises(S3UploadError) as err:
        upload_verified(cxq_client(settings), _file(tmp_path, 10), settings=settings, key="k")
    assert "NoSuchBucket" in str(err.value)
    assert settings.secret_access_key not in str(err.value) and settings.access_key_id not in str(err.value)


def test_stale_upload_cleanup_is_best_effort(moto_endpoint: str, caplog: pytest.LogCaptureFixture) -> None:
    """A policy without s3:ListBucketMultipartUploads, or a blip, failed every day before its upload began."""
    from botocore.exceptions import ClientError, EndpointConnectionError

    from cxq_data.options.s3 import abort_stale_uploads

    class Refusing:
        def __init__(self, exc: Exception) -> None:
            self.exc = exc

        def list_multipart_uploads(self, **_kwargs):
            raise self.exc

    denied = ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}}, "ListMultipartUploads")
    for exc in (denied, EndpointConnectionError(endpoint_url=moto_endpoint)):
        assert abort_stale_uploads(Refusing(exc), "bucket", "k/data.parquet") == 0
    assert caplog.text.count("could not list stale multipart uploads") == 2
