"""Remote validation: does the S3 prefix hold exactly the expected, verified days?

For every expected date the object must exist with the size, ETag and x-amz-meta-sha256 recorded in
its marker, and its Parquet footer (read with two ranged GETs, never the whole object) must show the
marker's row count and the cbbo schema. Objects for dates nobody expects, or keys that are not
``date=YYYY-MM-DD/data.parquet``, are reported as extra.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cxq_data.options.batch import read_inventory
from cxq_data.options.s3 import SHA256_META, S3Client, S3Settings, make_client
from cxq_data.options.state import Marker, read_marker, verified_dates
from cxq_data.paths import DataLayout

_KEY_RE = re.compile(r"^date=(\d{4}-\d{2}-\d{2})/data\.parquet$")
PROBLEMS = ("missing", "extra", "unverified", "size_mismatch", "checksum_mismatch", "rows_mismatch",
            "schema_mismatch", "unreadable")


@dataclass(frozen=True)
class Finding:
    date: str | None
    status: str  # "ok" or one of PROBLEMS
    key: str
    detail: str = ""

    def as_row(self) -> dict[str, Any]:
        return {"date": self.date, "status": self.status, "key": self.key, "detail": self.detail}


# problems a fresh upload of the day repairs (an "extra" object is not ours to touch)
_REDO_FIXES = ("missing", "unverified", "size_mismatch", "checksum_mismatch", "rows_mismatch", "schema_mismatch")


@dataclass
class ValidationReport:
    bucket: str
    prefix: str
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(f.status == "ok" for f in self.findings)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else 1

    def by_status(self, status: str) -> list[Finding]:
        return [f for f in self.findings if f.status == status]

    def rows(self) -> list[dict[str, Any]]:
        return [f.as_row() for f in self.findings]

    def headline(self) -> str:
        counts = {s: len(self.by_status(s)) for s in ("ok", *PROBLEMS)}
        text = ", ".join(f"{n} {s}" for s, n in counts.items() if n) or "nothing expected, nothing found"
        redo = sorted({f.date for f in self.findings if f.date and f.status in _REDO_FIXES})
        hint = f"; upload them again with --redo {','.join(redo)}" if redo else ""
        return f"s3://{self.bucket}/{self.prefix}: {text}{hint}"


class S3RangeFile(io.RawIOBase):
    """A read-only, seekable file over one S3 object (ranged GETs); enough for a Parquet footer."""

    def __init__(self, client: S3Client, bucket: str, key: str, size: int) -> None:
        self.client, self.bucket, self.key, self.size = client, bucket, key, size
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def read(self, n: int = -1) -> bytes:
        end = self.size if n is None or n < 0 else min(self.size, self.pos + n)
        if end <= self.pos:
            return b""
        body = self.client.get_object(Bucket=self.bucket, Key=self.key, Range=f"bytes={self.pos}-{end - 1}")["Body"]
        data = body.read()
        self.pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def expected_dates(source: Path | str | Iterable[str] | None, layout: DataLayout, underlying: str,
                   settings: S3Settings | None = None) -> list[str]:
    """Dates from a batch ZIP, an explicit list, or (None) every verified marker (for ``settings``'
    destination when given)."""
    if source is None:
        where = (lambda date: settings.destination(underlying, date)) if settings else None
        return sorted(verified_dates(layout, underlying, where))
    if isinstance(source, (str, Path)) and str(source).lower().endswith(".zip"):
        return read_inventory(source).dates
    if isinstance(source, (str, Path)):
        return [str(source)]
    return sorted(dict.fromkeys(str(d) for d in source))


def list_remote(client: S3Client, settings: S3Settings, underlying: str) -> dict[str, dict[str, Any]]:
    """key (relative to the underlying prefix) -> ListObjectsV2 entry."""
    prefix = settings.underlying_prefix(underlying)
    out: dict[str, dict[str, Any]] = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=settings.require_bucket(), Prefix=prefix):
        for obj in page.get("Contents", []):
            out[obj["Key"][len(prefix):]] = obj
    return out


def validate_remote(zip_path_or_dates: Path | str | Iterable[str] | None, *, settings: S3Settings,
                    layout: DataLayout, underlying: str = "SPY", client: S3Client | None = None) -> ValidationReport:
    """Compare the S3 prefix with the expected dates and their markers; see the module doc."""
    bucket = settings.require_bucket()
    client = client or make_client(settings)
    expected = expected_dates(zip_path_or_dates, layout, underlying, settings)
    remote = list_remote(client, settings, underlying)
    report = ValidationReport(bucket, settings.underlying_prefix(underlying))
    remote_dates: dict[str, str] = {}
    for rel in sorted(remote):
        match = _KEY_RE.match(rel)
        if match:
            remote_dates[match[1]] = rel
        else:
            report.findings.append(Finding(None, "extra", report.prefix + rel, "not a date=YYYY-MM-DD/data.parquet key"))
    for date in expected:
        key = settings.object_key(underlying, date)
        if date not in remote_dates:
            report.findings.append(Finding(date, "missing", key, "no object"))
            continue
        report.findings.append(_check_object(client, bucket, key, remote[remote_dates[date]],
                                             read_marker(layout, underlying, date, settings.destination(underlying, date)),
                                             date))
    for date in sorted(set(remote_dates) - set(expected)):
        report.findings.append(Finding(date, "extra", report.prefix + remote_dates[date], "date not expected"))
    report.findings.sort(key=lambda f: (f.date or "", f.key))
    return report


def _check_object(client: S3Client, bucket: str, key: str, listed: dict[str, Any], marker: Marker | None,
                  date: str) -> Finding:
    if marker is None:
        return Finding(date, "unverified", key, "object exists but no verified marker (rerun the upload)")
    size = int(listed["Size"])
    if size != marker.size:
        return Finding(date, "size_mismatch", key, f"size {size} != recorded {marker.size}")
    head = client.head_object(Bucket=bucket, Key=key)
    etag = str(head.get("ETag", "")).strip('"').lower()
    meta_sha = (head.get("Metadata") or {}).get(SHA256_META)
    if etag != marker.etag or (meta_sha is not None and meta_sha != marker.sha256):
        return Finding(date, "checksum_mismatch", key, f"ETag {etag} / sha256 {meta_sha} != recorded "
                                                       f"{marker.etag} / {marker.sha256}")
    return _check_footer(client, bucket, key, size, marker, date)


def _logical(schema: Any) -> list[tuple[str, str, bool]]:
    """Columns as (name, type, nullable) with dictionary types unwrapped: the same Parquet columns.

    (Files from converters before root/right became dictionary arrays store them as plain strings.)
    """
    import pyarrow as pa

    def plain(arrow_type: Any) -> str:
        return str(arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type)

    return [(f.name, plain(f.type), f.nullable) for f in schema]


def _check_footer(client: S3Client, bucket: str, key: str, size: int, marker: Marker, date: str) -> Finding:
    import pyarrow.parquet as pq

    from cxq_data.options.cbbo_table import CBBO_SCHEMA

    try:
        meta = pq.ParquetFile(S3RangeFile(client, bucket, key, size))
        rows, schema = meta.metadata.num_rows, meta.schema_arrow
    except Exception as exc:  # noqa: BLE001 - any parse error means the object is not usable Parquet
        return Finding(date, "unreadable", key, f"Parquet footer unreadable: {exc}")
    if rows != marker.rows:
        return Finding(date, "rows_mismatch", key, f"{rows} rows != recorded {marker.rows}")
    if _logical(schema) != _logical(CBBO_SCHEMA):
        return Finding(date, "schema_mismatch", key, f"schema differs from the cbbo schema: {schema.names}")
    return Finding(date, "ok", key, f"{rows} rows, {size} B")
