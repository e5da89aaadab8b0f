"""The immutable raw layer: every provider response exactly as received, plus a manifest.

    raw/{source}/{symbol}/{kind}/{YYYYmmddTHHMMSSffffffZ}-{sha12}.{ext}
    raw/{source}/{symbol}/{kind}/{YYYYmmddTHHMMSSffffffZ}-{sha12}.{ext}.manifest.json

A file is written once (atomic, never overwritten); a new fetch is a new file. The manifest holds the
request with secrets redacted, ``fetched_at`` (UTC), the HTTP status, the body's sha256 and the library
versions that fetched it. Normalizers read raw files back through :func:`list_raw` / :func:`read_raw`.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from cxq_data.atomic import atomic_write_bytes, atomic_write_json, is_temp_name
from cxq_data.errors import RawLayerError
from cxq_data.paths import DataLayout
from cxq_data.settings import redact_params, redact_text

MANIFEST_SUFFIX = ".manifest.json"
_VERSION_PACKAGES = ("cxq_data", "yfinance", "requests", "pandas", "pyarrow", "curl_cffi")


def library_versions() -> dict[str, str]:
    return dict(_library_versions())


@functools.cache
def _library_versions() -> dict[str, str]:  # cached: metadata lookups cost ~1 ms each, per raw file
    versions = {"python": platform.python_version()}
    for pkg in _VERSION_PACKAGES:
        try:
            versions[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            continue
    return versions


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def format_ts(ts: dt.datetime) -> str:
    """ISO 8601 UTC with microseconds and ``Z``."""
    return ts.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).astimezone(dt.UTC)  # 3.11+ reads the "Z"


class RawRecord:
    """One raw response on disk and its manifest.

    The manifest is read on first use: listing a symbol's raw files is a directory listing, and a
    rerun that only needs the files added since the last run reads only their manifests (a pair with
    a year of daily fetches has ~250 of them).
    """

    __slots__ = ("_manifest", "path")

    def __init__(self, path: Path, manifest: dict[str, Any] | None = None) -> None:
        self.path = path
        self._manifest = manifest

    @property
    def manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            self._manifest = read_manifest(self.path)
        return self._manifest

    def __eq__(self, other: object) -> bool:  # raw files are immutable: the path identifies the record
        return isinstance(other, RawRecord) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"RawRecord({str(self.path)!r})"

    @property
    def fetched_at(self) -> dt.datetime:
        return parse_ts(self.manifest["fetched_at"])

    @property
    def sha256(self) -> str:
        return str(self.manifest["sha256"])

    @property
    def kind(self) -> str:
        return str(self.manifest.get("kind", "daily"))

    def read_bytes(self, verify: bool = True) -> bytes:
        data = self.path.read_bytes()
        if verify and hashlib.sha256(data).hexdigest() != self.sha256:
            raise RawLayerError(f"{self.path}: sha256 does not match its manifest (file changed on disk)")
        return data


def read_manifest(data_path: Path) -> dict[str, Any]:
    manifest_path = data_path.with_name(data_path.name + MANIFEST_SUFFIX)
    try:
        return json.loads(manifest_path.read_text())
    except FileNotFoundError:
        raise RawLayerError(f"{data_path}: raw file without its manifest") from None
    except json.JSONDecodeError as exc:
        raise RawLayerError(f"{manifest_path}: unreadable manifest ({exc})") from exc


@dataclass
class RawResponse:
    """What an ingestor hands to :func:`write_raw`."""

    source: str
    symbol: str
    body: bytes
    ext: str  # json | csv | txt | zip
    kind: str = "daily"
    url: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    http_status: int | None = 200
    content_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    fetched_at: dt.datetime = field(default_factory=utc_now)


def write_raw(layout: DataLayout, resp: RawResponse, secrets: list[str] | None = None) -> RawRecord:
    """Store a response and its manifest immutably; return the record.

    The body is stored byte for byte. Secrets are scrubbed from the URL and parameters of the
    manifest only; a body that echoes a secret would be a provider bug, and is still refused here
    so that no key can end up on disk.
    """
    for secret in secrets or []:
        if secret and secret.encode() in resp.body:
            raise RawLayerError(f"{resp.source}/{resp.symbol}: response body contains a secret; not stored")
    path, manifest = raw_entry(layout, resp, secrets)
    text = json.dumps(manifest, default=str)
    for secret in secrets or []:
        if secret and secret in text:
            raise RawLayerError(f"{resp.source}/{resp.symbol}: manifest would contain a secret; not stored")
    try:
        atomic_write_bytes(path, resp.body, overwrite=False)
    except FileExistsError:  # same instant, same bytes: already stored
        pass
    atomic_write_json(path.with_name(path.name + MANIFEST_SUFFIX), manifest, overwrite=True)
    return RawRecord(path, manifest)


def raw_entry(
    layout: DataLayout, resp: RawResponse, secrets: list[str] | None = None, digest: str | None = None
) -> tuple[Path, dict[str, Any]]:
    """Where ``resp`` is stored and its manifest (no I/O); shared by :func:`write_raw` and batch writers."""
    digest = digest or hashlib.sha256(resp.body).hexdigest()
    stamp = resp.fetched_at.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    folder = layout.raw_dir(resp.source, resp.symbol, resp.kind)
    path = folder / f"{stamp}-{digest[:12]}.{resp.ext}"
    manifest = {
        "source": resp.source,
        "symbol": resp.symbol,
        "kind": resp.kind,
        "file": path.name,
        "bytes": len(resp.body),
        "sha256": digest,
        "fetched_at": format_ts(resp.fetched_at),
        "http_status": resp.http_status,
        "content_type": resp.content_type,
        "request": {
            "url": redact_text(resp.url, secrets) if resp.url else None,
            "params": redact_params(dict(resp.params)),
        },
        "library_versions": library_versions(),
        **resp.extra,
    }
    return path, manifest


def list_raw(layout: DataLayout, source: str, symbol: str, kind: str = "daily") -> list[RawRecord]:
    """Raw records of one symbol/source/kind, oldest fetch first (ties broken by file name).

    File names start with the UTC fetch stamp (:func:`raw_entry`), so name order is fetch order;
    manifests are read lazily (see :class:`RawRecord`).
    """
    folder = layout.raw_dir(source, symbol, kind)
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return records_in(folder, names)


def records_in(folder: Path, file_names: Iterable[str]) -> list[RawRecord]:
    """The raw records among the file names of one raw folder, in fetch order (see :func:`list_raw`).

    A manifest makes a record; a data file without its manifest is not one yet (being written, or
    pushed to S3 without its manifest so far). Also used for an S3 listing of a raw folder.
    """
    names = set(file_names)
    records = []
    for name in sorted(names):
        if not name.endswith(MANIFEST_SUFFIX) or is_temp_name(name):
            continue
        data_name = name[: -len(MANIFEST_SUFFIX)]
        if data_name not in names:
            raise RawLayerError(f"{folder / name}: manifest without its data file {data_name}")
        records.append(RawRecord(folder / data_name))
    return records


def raw_data_files(layout: DataLayout, source: str, symbol: str, kind: str = "daily") -> list[Path]:
    """Data files (not manifests) of one symbol/source, for Snakemake input functions."""
    return [r.path for r in list_raw(layout, source, symbol, kind)]


def list_raw_symbols(layout: DataLayout, source: str) -> list[str]:
    folder = layout.raw / source
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("_"))
