"""Per-date markers: the single source of truth for "this day is in S3 and verified".

    state/options/cbbo-1m/{underlying}/{date}.json           verified upload (Snakemake target too)
    state/options/cbbo-1m/{underlying}/failed/{date}.json    last failure (removed on success)
    state/options/cbbo-1m/{underlying}/.locks/{date}.lock    one process per date at a time

A marker is written atomically and only after the object was verified, so its presence means done -
for the destination it names (endpoint, bucket and key): after a change of ``S3_ENDPOINT_URL``,
``S3_BUCKET_NAME`` or ``S3_PREFIX`` it no longer counts and the date is uploaded again. The
standalone script and the Snakemake rule read and write the same files. Nothing secret is stored
(no credentials; the endpoint URL has any user-info stripped).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from cxq_data.atomic import atomic_write_json
from cxq_data.paths import DataLayout

DATASET_DIR = ("options", "cbbo-1m")
STATUS_VERIFIED = "verified"
MARKER_VERSION = 1
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def utc_now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_date(date: str) -> str:
    if not _DATE_RE.match(date):
        raise ValueError(f"date {date!r} is not YYYY-MM-DD")
    try:
        dt.date.fromisoformat(date)
    except ValueError:
        raise ValueError(f"date {date!r} is not a calendar date") from None
    return date


@dataclass(frozen=True)
class Marker:
    underlying: str
    date: str
    bucket: str
    key: str
    endpoint: str | None
    size: int  # Parquet bytes (= object ContentLength)
    sha256: str  # Parquet sha256 (also x-amz-meta-sha256)
    md5: str
    etag: str
    parts: int
    verified_by: str
    rows: int
    source_file: str
    source_size: int
    source_sha256: str
    zip_file: str | None
    dbn_version: int | None
    started_at: str
    uploaded_at: str
    attempts: int = 1
    status: str = STATUS_VERIFIED
    marker_version: int = MARKER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Marker:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Destination:
    """Where a date's object must be for its marker to count: endpoint, bucket and key. A staging
    store and AWS may share a bucket name; a marker from one must not skip the upload to the other.
    (The same store under another URL - localhost vs 127.0.0.1 - costs a re-upload, not data.)"""

    bucket: str | None  # None: not configured yet (a dry run), any bucket matches
    key: str
    endpoint: str | None = None  # None: AWS

    def __str__(self) -> str:  # also a Snakemake param: a change reruns the upload
        return f"s3://{self.bucket or '<S3_BUCKET_NAME>'}/{self.key} at {self.endpoint or 'AWS'}"

    def holds(self, marker: Marker) -> bool:
        return (marker.key == self.key and (self.bucket is None or marker.bucket == self.bucket)
                and same_endpoint(marker.endpoint, self.endpoint))


def same_endpoint(a: str | None, b: str | None) -> bool:
    """Equal after dropping user-info, case of scheme and host, and a trailing slash."""
    return _endpoint_id(a) == _endpoint_id(b)


def _endpoint_id(url: str | None) -> str:
    return (strip_userinfo(url) or "").strip().rstrip("/").lower()


def state_dir(layout: DataLayout, underlying: str) -> Path:
    return layout.state.joinpath(*DATASET_DIR, underlying)


def marker_path(layout: DataLayout, underlying: str, date: str) -> Path:
    return state_dir(layout, underlying) / f"{check_date(date)}.json"


def failure_path(layout: DataLayout, underlying: str, date: str) -> Path:
    return state_dir(layout, underlying) / "failed" / f"{check_date(date)}.json"


def lock_path(layout: DataLayout, underlying: str, date: str) -> Path:
    return state_dir(layout, underlying) / ".locks" / f"{check_date(date)}.lock"


def read_marker(layout: DataLayout, underlying: str, date: str,
                destination: Destination | None = None) -> Marker | None:
    """The verified marker for ``date``, or None (absent, unreadable, not verified or - when
    ``destination`` is given - for another endpoint, bucket or key: redo)."""
    path = marker_path(layout, underlying, date)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        marker = Marker.from_dict(data)
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if marker.status != STATUS_VERIFIED or marker.date != date:
        return None
    return marker if destination is None or destination.holds(marker) else None


def write_marker(layout: DataLayout, marker: Marker) -> Path:
    path = atomic_write_json(marker_path(layout, marker.underlying, marker.date), marker.to_dict())
    failure_path(layout, marker.underlying, marker.date).unlink(missing_ok=True)
    return path


def record_failure(layout: DataLayout, underlying: str, date: str, error: str) -> Path:
    """Remember why a date failed (already redacted by the caller); the next run retries it."""
    path = failure_path(layout, underlying, date)
    previous = read_failure(layout, underlying, date)
    failures = int(previous.get("failures", 0)) + 1 if previous else 1
    return atomic_write_json(path, {"date": date, "underlying": underlying, "error": error,
                                    "failed_at": utc_now(), "failures": failures})


def read_failure(layout: DataLayout, underlying: str, date: str) -> dict[str, Any] | None:
    try:
        return json.loads(failure_path(layout, underlying, date).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None


def verified_dates(layout: DataLayout, underlying: str,
                   destination: Callable[[str], Destination] | None = None) -> dict[str, Marker]:
    """All verified markers of ``underlying`` keyed by date (``destination(date)``: only those for it)."""
    out: dict[str, Marker] = {}
    folder = state_dir(layout, underlying)
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        if not _DATE_RE.match(path.stem):
            continue
        marker = read_marker(layout, underlying, path.stem, destination(path.stem) if destination else None)
        if marker:
            out[marker.date] = marker
    return out


def strip_userinfo(url: str | None) -> str | None:
    """``http://user:pw@host`` -> ``http://host`` (an endpoint must never carry credentials to disk)."""
    return re.sub(r"//[^/@]*@", "//", url) if url else url
