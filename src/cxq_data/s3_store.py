"""A data directory mirrored under an S3 prefix (Snakemake's default storage for the lake).

    s3://BUCKET/PREFIX/<data dir>/raw/{source}/{symbol}/{kind}/...          write-once raw files + manifests
    s3://BUCKET/PREFIX/<data dir>/processed/symbol=X/source=Y/year=Z/data.parquet   (+ _index.json, ...)
    s3://BUCKET/PREFIX/<data dir>/state/...                                Snakemake's declared files

``<data dir>`` is the data directory relative to the Snakemake work folder (``data`` by default), so an
object's key is ``ROOT/<path relative to the data dir>``: the same relative paths as on disk, the same
keys Snakemake's storage plugin gives the declared files.

Uploads reuse the options uploader (:func:`cxq_data.options.s3.upload_verified`: Content-MD5 and SHA-256
sent with the body, then HeadObject must show the size and ETag we computed), which stays in force under
the storage plugin's ``AWS_REQUEST_CHECKSUM_CALCULATION=when_required``. Downloads are checked the same
way in the other direction: size, MD5 against a single-part ETag, the ``x-amz-meta-sha256`` our uploader
stores, and the SHA-256 the caller knows from an index or a raw manifest. A download lands in a temp
file and is renamed into place only when every check passed.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import posixpath
import random
import re
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cxq_data.atomic import TEMP_PREFIX, TEMP_SUFFIX, atomic_path
from cxq_data.errors import ConfigError
from cxq_data.options.s3 import (
    SHA256_META,
    RemoteObject,
    S3Client,
    S3IntegrityError,
    S3Settings,
    S3UploadError,
    is_retryable,
    make_client,
    upload_verified,
)
from cxq_data.settings import load_dotenv_once

log = logging.getLogger("cxq_data.s3_store")

_MD5_ETAG = re.compile(r"^[0-9a-f]{32}$")
_CHUNK = 1 << 20
# Credentials: boto3's names first, then the storage plugin's (SNAKEMAKE_STORAGE_S3_*), else boto3's
# default chain (~/.aws, instance role). Never taken from Snakemake params (they are recorded on disk).
_KEY_ENV = ("AWS_ACCESS_KEY_ID", "SNAKEMAKE_STORAGE_S3_ACCESS_KEY")
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "SNAKEMAKE_STORAGE_S3_SECRET_KEY")


@contextlib.contextmanager
def _landing(dest: Path, durable: bool) -> Iterator[Path]:
    """A temp name next to ``dest`` renamed onto it on success (fsynced only when ``durable``)."""
    if durable:
        with atomic_path(dest) as tmp:
            yield tmp
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f"{TEMP_PREFIX}{dest.name}.{os.getpid()}.{threading.get_ident()}{TEMP_SUFFIX}")
    try:
        yield tmp
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


class S3ContentMismatch(S3IntegrityError):
    """The object arrived intact but is not the content the caller expected (index / manifest SHA-256)."""


@dataclass(frozen=True)
class StorageTarget:
    """Where the data directory lives in S3. No secrets: safe in Snakemake params and logs."""

    bucket: str
    root: str  # key prefix of the data dir, no leading or trailing slash
    endpoint_url: str | None = None
    region: str | None = None

    @classmethod
    def from_prefix(cls, prefix_url: str, data_rel: str, *, endpoint_url: str | None = None,
                    region: str | None = None) -> StorageTarget:
        """From ``--default-storage-prefix s3://BUCKET/PREFIX`` and the data dir relative to the work dir."""
        parsed = urlparse(prefix_url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise ConfigError(f"default storage prefix must look like s3://bucket/prefix, got {prefix_url!r}")
        rel = posixpath.normpath(Path(data_rel).as_posix())
        if rel.startswith(("/", "../")) or rel == "..":
            raise ConfigError(f"with S3 default storage the data dir must lie inside the work folder (got "
                              f"{data_rel!r}): run Snakemake from a folder that contains it")
        parts = [p for p in (parsed.path.strip("/"), "" if rel == "." else rel) if p]
        return cls(parsed.netloc, "/".join(parts), endpoint_url or None, region or None)

    def as_params(self) -> dict[str, str]:
        return {"bucket": self.bucket, "root": self.root, "endpoint_url": self.endpoint_url or "",
                "region": self.region or ""}

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> StorageTarget:
        return cls(str(params["bucket"]), str(params["root"]), params.get("endpoint_url") or None,
                   params.get("region") or None)

    def key(self, rel: str) -> str:
        return f"{self.root}/{rel}" if self.root else rel

    def url(self, rel: str = "") -> str:
        return f"s3://{self.bucket}/{self.key(rel)}"


@dataclass(frozen=True)
class RemoteFile:
    size: int
    etag: str  # lower-case, without quotes


def file_md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


def same_content(path: Path, remote: RemoteFile | None) -> bool:
    """The object holds exactly this file: same size and a single-part ETag equal to its MD5.

    A multipart or opaque ETag proves nothing, so such an object counts as different (uploaded again).
    """
    if remote is None or not _MD5_ETAG.match(remote.etag):
        return False
    try:
        if path.stat().st_size != remote.size:
            return False
    except FileNotFoundError:
        return False
    return file_md5(path) == remote.etag


def storage_settings(target: StorageTarget) -> S3Settings:
    load_dotenv_once()
    env = os.environ
    return S3Settings(
        bucket=target.bucket, prefix=target.root, endpoint_url=target.endpoint_url, region=target.region,
        access_key_id=next((env[n] for n in _KEY_ENV if env.get(n)), None),
        secret_access_key=next((env[n] for n in _SECRET_ENV if env.get(n)), None),
    )


class ObjectStore:
    """Verified object I/O under a :class:`StorageTarget`; paths are relative to the data dir."""

    def __init__(self, target: StorageTarget, client: S3Client | None = None,
                 settings: S3Settings | None = None) -> None:
        self.target = target
        self.settings = settings or storage_settings(target)
        self.client = client or make_client(self.settings)

    def list(self, rel_prefix: str) -> dict[str, RemoteFile]:
        """Objects under ``rel_prefix`` (give a trailing ``/`` for a folder): rel path -> size, ETag."""
        out: dict[str, RemoteFile] = {}
        cut = len(self.target.key(""))
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.target.bucket,
                                                                       Prefix=self.target.key(rel_prefix))
        for page in pages:
            for obj in page.get("Contents", []):
                out[obj["Key"][cut:]] = RemoteFile(int(obj["Size"]), str(obj.get("ETag", "")).strip('"').lower())
        return out

    def list_dirs(self, rel_prefix: str) -> list[str]:
        """Names of the 'folders' directly under ``rel_prefix`` (which must end with ``/``)."""
        names = []
        base = self.target.key(rel_prefix)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.target.bucket, Prefix=base,
                                                                       Delimiter="/")
        for page in pages:
            names += [p["Prefix"][len(base):].rstrip("/") for p in page.get("CommonPrefixes", [])]
        return sorted(names)

    def put(self, path: Path, rel: str) -> RemoteObject:
        """Upload one file and prove the stored object equals it (see :func:`upload_verified`)."""
        return upload_verified(self.client, path, settings=self.settings, key=self.target.key(rel))

    def delete(self, rels: Iterable[str]) -> int:
        keys = [{"Key": self.target.key(r)} for r in rels]
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.target.bucket, Delete={"Objects": keys[i:i + 1000], "Quiet": True})
        return len(keys)

    def get(self, rel: str, dest: Path, sha256: str | None = None, *, durable: bool = True) -> str:
        """Download ``rel`` to ``dest`` (temp file + rename); return its SHA-256.

        Transfer checks (size, single-part ETag = MD5, stored ``x-amz-meta-sha256``) are retried like
        uploads; a complete object whose SHA-256 differs from ``sha256`` raises :class:`S3ContentMismatch`
        and leaves ``dest`` untouched. ``durable=False`` skips the fsyncs (scratch copies, or a caller
        that calls ``atomic.sync_filesystem`` before anything vouches for the file).
        """
        where = self.target.url(rel)
        last: BaseException | None = None
        for attempt in range(1, self.settings.max_attempts + 1):
            try:
                with _landing(dest, durable) as tmp:
                    got = self._download(rel, tmp)
                    if sha256 is not None and got != sha256:
                        raise S3ContentMismatch(f"{where}: SHA-256 {got} is not the expected {sha256}")
                return got
            except S3ContentMismatch:
                raise
            except Exception as exc:  # noqa: BLE001 - classified below
                if not is_retryable(exc):
                    raise S3UploadError(self.settings.redact(f"download of {where} failed: {exc}")) from None
                last = exc
            log.warning("download attempt %d/%d of %s failed: %s", attempt, self.settings.max_attempts, where,
                        self.settings.redact(str(last)))
            if attempt < self.settings.max_attempts:
                time.sleep(self.settings.backoff_base_s * (2 ** (attempt - 1)) * (0.5 + random.random()))
        raise S3UploadError(self.settings.redact(f"download of {where} not verified after "
                                                 f"{self.settings.max_attempts} attempts: {last}"))

    def _download(self, rel: str, tmp: Path) -> str:
        resp = self.client.get_object(Bucket=self.target.bucket, Key=self.target.key(rel))
        md5, sha, size = hashlib.md5(), hashlib.sha256(), 0
        with open(tmp, "wb") as out:
            for block in iter(lambda: resp["Body"].read(_CHUNK), b""):
                out.write(block)
                md5.update(block)
                sha.update(block)
                size += len(block)
        where = self.target.url(rel)
        if size != int(resp["ContentLength"]):
            raise S3IntegrityError(f"{where}: got {size} bytes, expected {resp['ContentLength']}")
        etag = str(resp.get("ETag", "")).strip('"').lower()
        if _MD5_ETAG.match(etag) and etag != md5.hexdigest():
            raise S3IntegrityError(f"{where}: MD5 of the body differs from the ETag (changed in transit)")
        meta_sha = (resp.get("Metadata") or {}).get(SHA256_META)
        if meta_sha is not None and meta_sha != sha.hexdigest():
            raise S3IntegrityError(f"{where}: SHA-256 of the body differs from x-amz-meta-sha256")
        return sha.hexdigest()
