"""Verified S3 uploads for the options pipeline (boto3, any S3-compatible endpoint).

Why we verify ourselves: boto3 >= 1.36 adds a CRC32 by default, but only when
``request_checksum_calculation=when_supported``; with ``when_required`` (what the Snakemake S3 plugin
sets) nothing protects the body over plain http, and moto accepts a wrong Content-MD5. So every upload
carries our own Content-MD5 + SHA-256 (per part for multipart), and afterwards HeadObject must show
the expected size and the ETag we computed (MD5, or MD5-of-part-MD5s ``-N``) or our SHA-256 checksum.
A mismatch deletes the object and uploads again.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxq_data.errors import ConfigError, CxqError
from cxq_data.options.state import Destination, strip_userinfo
from cxq_data.settings import env_number, load_dotenv_once, redact_text

if TYPE_CHECKING:  # boto3 is imported lazily: the CLI must stay light
    from mypy_boto3_s3 import S3Client  # pragma: no cover
else:
    S3Client = Any

log = logging.getLogger("cxq_data.options.s3")

DEFAULT_PREFIX = "options/cbbo-1m"
MIB = 1 << 20
SHA256_META = "sha256"  # stored as x-amz-meta-sha256 (hex of the whole object)
_RETRYABLE_CODES = {
    "BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch", "RequestTimeout", "SlowDown",
    "Throttling", "ThrottlingException", "InternalError", "ServiceUnavailable", "RequestTimeTooSkewed",
}
_MD5_ETAG = re.compile(r"^[0-9a-f]{32}(-\d+)?$")


class S3UploadError(CxqError):
    """An upload could not be completed and verified after all attempts."""


class S3IntegrityError(S3UploadError):
    """The object on the server does not match the local file (size, ETag or checksum)."""


class S3UnavailableError(S3UploadError):
    """The destination failed, not the file: unreachable, 5xx after every retry, or the credentials or
    bucket refused. Every later upload would fail the same way (a batch probes before it goes on)."""


@dataclass(frozen=True)
class S3Settings:
    """Where and how to upload. Credentials are kept out of ``repr`` and never logged."""

    bucket: str | None
    prefix: str = DEFAULT_PREFIX
    endpoint_url: str | None = None
    region: str | None = None
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    multipart_threshold: int = 32 * MIB
    part_size: int = 16 * MIB
    max_attempts: int = 5  # whole-object attempts (upload + verify); botocore retries each request too
    backoff_base_s: float = 0.5
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 120.0

    @classmethod
    def from_env(cls, **overrides: Any) -> S3Settings:
        """Settings from the environment / ``.env``; ``overrides`` that are not None win."""
        load_dotenv_once()
        env = os.environ
        values: dict[str, Any] = {
            "bucket": env.get("S3_BUCKET_NAME") or None,
            "prefix": (env.get("S3_PREFIX") or DEFAULT_PREFIX).strip("/"),
            "endpoint_url": env.get("S3_ENDPOINT_URL") or None,
            "region": env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION") or None,
            "access_key_id": env.get("AWS_ACCESS_KEY_ID") or None,
            "secret_access_key": env.get("AWS_SECRET_ACCESS_KEY") or None,
        }
        for name in ("multipart_threshold", "part_size", "max_attempts"):
            values[name] = env_number(f"CXQ_S3_{name.upper()}", getattr(cls, name), int, positive=True)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if values.get("prefix") is not None:
            values["prefix"] = str(values["prefix"]).strip("/")
        return cls(**values)

    def require_bucket(self) -> str:
        if not self.bucket:
            raise ConfigError("S3_BUCKET_NAME is not set (environment or .env)")
        return self.bucket

    def secrets(self) -> list[str]:
        return [s for s in (self.secret_access_key, self.access_key_id) if s]

    def redact(self, text: str) -> str:
        return redact_text(text, self.secrets())

    def object_key(self, underlying: str, date: str) -> str:
        return f"{self.prefix}/underlying={underlying}/date={date}/data.parquet"

    def destination(self, underlying: str, date: str) -> Destination:
        """Where ``date``'s object goes: a marker for anywhere else does not count as done."""
        return Destination(self.bucket, self.object_key(underlying, date), strip_userinfo(self.endpoint_url))

    def underlying_prefix(self, underlying: str) -> str:
        return f"{self.prefix}/underlying={underlying}/"

    def describe(self) -> str:
        where = self.endpoint_url or "AWS"
        return f"s3://{self.bucket}/{self.prefix} ({where})"


def make_client(settings: S3Settings) -> S3Client:
    """A boto3 S3 client with standard retries (5xx, throttling, connection errors) and timeouts."""
    import boto3
    from botocore.config import Config

    config = Config(
        retries={"max_attempts": 6, "mode": "standard"},
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        # Path style: local servers (moto, SeaweedFS) have no per-bucket DNS names.
        s3={"addressing_style": "path"} if settings.endpoint_url else {},
    )
    session = boto3.session.Session(
        aws_access_key_id=settings.access_key_id,
        aws_secret_access_key=settings.secret_access_key,
        region_name=settings.region or "us-east-1",
    )
    return session.client("s3", endpoint_url=settings.endpoint_url, config=config)


# --------------------------------------------------------------------------- digests


@dataclass(frozen=True)
class FileDigests:
    """Everything needed to send and later verify one file; computed in a single read."""

    size: int
    sha256: str
    md5: str
    part_size: int
    part_md5: tuple[bytes, ...]
    part_sha256: tuple[bytes, ...]

    @property
    def multipart(self) -> bool:
        return len(self.part_md5) > 1

    def expected_etag(self) -> str:
        """S3's ETag: MD5 for a single PUT, MD5 of the part MD5s + ``-N`` for multipart."""
        if not self.multipart:
            return self.md5
        return hashlib.md5(b"".join(self.part_md5)).hexdigest() + f"-{len(self.part_md5)}"

    def expected_checksum_sha256(self) -> str:
        """The checksum S3 reports: full-object SHA-256, or composite SHA-256 of part digests ``-N``."""
        if not self.multipart:
            return _b64(bytes.fromhex(self.sha256))
        return _b64(hashlib.sha256(b"".join(self.part_sha256)).digest()) + f"-{len(self.part_sha256)}"


def compute_digests(path: Path, *, part_size: int, multipart_threshold: int) -> FileDigests:
    whole_sha, whole_md5 = hashlib.sha256(), hashlib.md5()
    part_md5: list[bytes] = []
    part_sha: list[bytes] = []
    size = path.stat().st_size
    chunk = part_size if size > multipart_threshold else max(size, 1)
    with open(path, "rb") as fh:
        while True:
            block = fh.read(chunk)
            if not block and part_md5:
                break
            whole_sha.update(block)
            whole_md5.update(block)
            part_md5.append(hashlib.md5(block).digest())
            part_sha.append(hashlib.sha256(block).digest())
            if not block:
                break
    return FileDigests(size, whole_sha.hexdigest(), whole_md5.hexdigest(), chunk, tuple(part_md5), tuple(part_sha))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


# --------------------------------------------------------------------------- upload


@dataclass(frozen=True)
class RemoteObject:
    bucket: str
    key: str
    size: int
    etag: str
    parts: int
    verified_by: str  # "etag", "checksum-sha256" or "download-sha256"
    attempts: int


ProgressCallback = Callable[[int], None]


def upload_verified(client: S3Client, path: Path, *, settings: S3Settings, key: str,
                    digests: FileDigests | None = None, on_bytes: ProgressCallback | None = None,
                    sleep: Callable[[float], None] = time.sleep) -> RemoteObject:
    """Upload ``path`` to ``key`` and prove the stored object equals it; retry what can be retried."""
    bucket = settings.require_bucket()
    digests = digests or compute_digests(path, part_size=settings.part_size,
                                         multipart_threshold=settings.multipart_threshold)
    last_error: BaseException | None = None
    for attempt in range(1, settings.max_attempts + 1):
        try:
            if digests.multipart:
                _multipart_upload(client, path, bucket, key, digests, on_bytes)
            else:
                _single_upload(client, path, bucket, key, digests, on_bytes)
            how = verify_object(client, bucket, key, digests)
            etag = digests.expected_etag()
            return RemoteObject(bucket, key, digests.size, etag, len(digests.part_md5), how, attempt)
        except S3IntegrityError as exc:
            last_error = exc
            _delete_quietly(client, bucket, key)  # never leave a corrupt object under the final key
        except Exception as exc:  # noqa: BLE001 - classified below
            if not is_retryable(exc):
                error = S3UnavailableError if is_refusal(exc) else S3UploadError
                raise error(settings.redact(f"upload of {path.name} to s3://{bucket}/{key} failed: {exc}")) from None
            last_error = exc
        log.warning("attempt %d/%d for s3://%s/%s failed: %s", attempt, settings.max_attempts, bucket, key,
                    settings.redact(str(last_error)))
        if attempt < settings.max_attempts:
            sleep(settings.backoff_base_s * (2 ** (attempt - 1)) * (0.5 + random.random()))
    error = S3UploadError if isinstance(last_error, S3IntegrityError) else S3UnavailableError
    raise error(settings.redact(f"upload of {path.name} to s3://{bucket}/{key} not verified after "
                                f"{settings.max_attempts} attempts: {last_error}"))


def is_retryable(exc: BaseException) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    if isinstance(exc, S3IntegrityError):
        return True
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        return err.get("Code") in _RETRYABLE_CODES or status >= 500
    # EndpointConnectionError, ConnectionClosedError, ReadTimeoutError, IncompleteRead ...
    return isinstance(exc, (BotoCoreError, ConnectionError, TimeoutError))


_REFUSALS = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "ExpiredToken",
             "InvalidToken", "AllAccessDisabled", "AccountProblem"}


def is_refusal(exc: BaseException) -> bool:
    """Credentials or bucket refused: the same for every object, so not worth trying the next day."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return True
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in _REFUSALS


_CONTENT_TYPES = {".parquet": "application/vnd.apache.parquet", ".json": "application/json",
                  ".csv": "text/csv", ".txt": "text/plain"}


def content_type_for(key: str) -> str:
    """The Content-Type an object gets, from its key's extension (Parquet for the options objects)."""
    dot = key.rfind(".")
    return _CONTENT_TYPES.get(key[dot:].lower() if dot >= 0 else "", "application/octet-stream")


def _single_upload(client: S3Client, path: Path, bucket: str, key: str, digests: FileDigests,
                   on_bytes: ProgressCallback | None) -> None:
    with open(path, "rb") as body:
        client.put_object(
            Bucket=bucket, Key=key, Body=body, ContentLength=digests.size,
            ContentMD5=_b64(bytes.fromhex(digests.md5)),
            ChecksumSHA256=_b64(bytes.fromhex(digests.sha256)),
            ContentType=content_type_for(key), Metadata={SHA256_META: digests.sha256},
        )
    if on_bytes:
        on_bytes(digests.size)


def _multipart_upload(client: S3Client, path: Path, bucket: str, key: str, digests: FileDigests,
                      on_bytes: ProgressCallback | None) -> None:
    upload_id = client.create_multipart_upload(
        Bucket=bucket, Key=key, ChecksumAlgorithm="SHA256",
        ContentType=content_type_for(key), Metadata={SHA256_META: digests.sha256},
    )["UploadId"]
    try:
        parts = []
        with open(path, "rb") as fh:
            for number, (md5, sha) in enumerate(zip(digests.part_md5, digests.part_sha256), start=1):
                block = fh.read(digests.part_size)
                resp = client.upload_part(Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                                          Body=block, ContentMD5=_b64(md5), ChecksumSHA256=_b64(sha))
                parts.append({"PartNumber": number, "ETag": resp["ETag"], "ChecksumSHA256": _b64(sha)})
                if on_bytes:
                    on_bytes(len(block))
        client.complete_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id,
                                         MultipartUpload={"Parts": parts})
    except BaseException:
        # Also on KeyboardInterrupt: an aborted upload leaves no parts and no object behind.
        _abort_quietly(client, bucket, key, upload_id)
        raise


def verify_object(client: S3Client, bucket: str, key: str, digests: FileDigests) -> str:
    """Check the stored object against ``digests``; return how it was proven, raise on mismatch."""
    head = client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    where = f"s3://{bucket}/{key}"
    if int(head["ContentLength"]) != digests.size:
        raise S3IntegrityError(f"{where}: size {head['ContentLength']} != local {digests.size}")
    meta_sha = (head.get("Metadata") or {}).get(SHA256_META)
    if meta_sha is not None and meta_sha != digests.sha256:
        raise S3IntegrityError(f"{where}: x-amz-meta-sha256 {meta_sha} != local {digests.sha256}")
    checksum = head.get("ChecksumSHA256")
    if digests.multipart and checksum and "-" not in checksum:
        # moto reports a non-composite value for multipart objects; only the composite form (…-N)
        # has a definition we can recompute, so anything else is no evidence either way.
        checksum = None
    if checksum and checksum != digests.expected_checksum_sha256():
        raise S3IntegrityError(f"{where}: ChecksumSHA256 {checksum} != local")
    etag = str(head.get("ETag", "")).strip('"').lower()
    if _MD5_ETAG.match(etag):
        if etag != digests.expected_etag():
            raise S3IntegrityError(f"{where}: ETag {etag} != expected {digests.expected_etag()} "
                                   "(body changed in transit)")
        return "etag"
    if checksum:
        return "checksum-sha256"
    # Opaque ETag (SSE-KMS) and no checksum: read it back, the only proof left.
    if download_sha256(client, bucket, key) != digests.sha256:
        raise S3IntegrityError(f"{where}: downloaded SHA-256 differs from local")
    return "download-sha256"


def download_sha256(client: S3Client, bucket: str, key: str) -> str:
    digest = hashlib.sha256()
    body = client.get_object(Bucket=bucket, Key=key)["Body"]
    for block in iter(lambda: body.read(MIB), b""):
        digest.update(block)
    return digest.hexdigest()


def abort_stale_uploads(client: S3Client, bucket: str, key: str) -> int:
    """Abort multipart uploads a killed run left for ``key`` (they hold storage, never an object).

    Best effort: a failed listing (a brief outage, or a policy without s3:ListBucketMultipartUploads)
    is logged and the upload goes ahead - it has its own retries and verification - instead of failing
    the day before a byte was sent.
    """
    aborted = 0
    try:
        resp = client.list_multipart_uploads(Bucket=bucket, Prefix=key)
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("could not list stale multipart uploads for s3://%s/%s: %s", bucket, key, type(exc).__name__)
        return 0
    for upload in resp.get("Uploads", []):
        if upload.get("Key") == key:
            _abort_quietly(client, bucket, key, upload["UploadId"])
            aborted += 1
    return aborted


def _abort_quietly(client: S3Client, bucket: str, key: str, upload_id: str) -> None:
    try:
        client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
    except Exception as exc:  # noqa: BLE001 - best effort; the next run aborts stale uploads again
        log.warning("could not abort multipart upload for s3://%s/%s: %s", bucket, key, type(exc).__name__)


def _delete_quietly(client: S3Client, bucket: str, key: str) -> None:
    try:
        client.delete_object(Bucket=bucket, Key=key)
    except Exception as exc:  # noqa: BLE001
        log.warning("could not delete unverified s3://%s/%s: %s", bucket, key, type(exc).__name__)
