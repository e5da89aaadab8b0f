"""Preflight: everything a multi-hour batch needs, checked in seconds before the first date.

One clear line per check; the first failure raises ``PreflightError`` with that line (fail fast).
The probe object lives under ``{prefix}/_preflight/`` and is deleted again.
"""

from __future__ import annotations

import importlib.util
import shutil
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

from cxq_data.errors import ConfigError
from cxq_data.options.batch import ZipInventory
from cxq_data.options.s3 import S3Client, S3Settings
from cxq_data.paths import DataLayout

REQUIRED_PACKAGES = ("boto3", "pyarrow", "databento_dbn", "zstandard", "filelock")
# Extracted member + Parquet (at most about the member's size) + slack for the spill file.
DISK_FACTOR = 3.0


class PreflightError(ConfigError):
    """A precondition for the batch does not hold."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def run_preflight(inventory: ZipInventory, dates: list[str], *, settings: S3Settings, layout: DataLayout,
                  client: S3Client, report: Callable[[str], None] | None = None) -> list[CheckResult]:
    checks: list[Callable[[], CheckResult]] = [
        lambda: check_packages(),
        lambda: check_zip(inventory, dates),
        lambda: check_disk(inventory, dates, layout),
        lambda: check_credentials(settings),
        lambda: check_bucket(client, settings),
    ]
    results = []
    for check in checks:
        result = check()
        results.append(result)
        if report:
            report(result.line())
        if not result.ok:
            raise PreflightError(settings.redact(f"preflight failed: {result.name}: {result.detail}"))
    return results


def check_packages() -> CheckResult:
    missing = [p for p in REQUIRED_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        return CheckResult("packages", False, f"missing {', '.join(missing)} (pip install cxq_data[pipeline])")
    return CheckResult("packages", True, ", ".join(REQUIRED_PACKAGES))


def check_zip(inventory: ZipInventory, dates: list[str]) -> CheckResult:
    """The central directory was read already; also test the first member's CRC is readable."""
    if not dates:
        return CheckResult("zip", False, f"{inventory.path.name}: no day files selected")
    try:
        with zipfile.ZipFile(inventory.path) as archive, archive.open(inventory.days[dates[0]].name) as fh:
            fh.read(1 << 16)
    except (OSError, zipfile.BadZipFile) as exc:
        return CheckResult("zip", False, f"{inventory.path.name}: unreadable ({exc})")
    hashed = sum(1 for d in dates if inventory.days[d].sha256)
    return CheckResult("zip", True, f"{inventory.path.name}: {len(dates)} days selected, {hashed} with manifest sha256")


def check_disk(inventory: ZipInventory, dates: list[str], layout: DataLayout) -> CheckResult:
    largest = max(inventory.days[d].size for d in dates)
    need = int(largest * DISK_FACTOR) + (16 << 20)
    folder = layout.root
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    detail = f"{free / 1e9:.2f} GB free under {layout.root}, need ~{need / 1e9:.2f} GB (largest member {largest:,} B)"
    return CheckResult("disk", free >= need, detail)


def check_credentials(settings: S3Settings) -> CheckResult:
    if not settings.bucket:
        return CheckResult("credentials", False, "S3_BUCKET_NAME is not set (environment or .env)")
    if bool(settings.access_key_id) != bool(settings.secret_access_key):
        return CheckResult("credentials", False, "set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
    if not settings.access_key_id:
        import boto3

        if boto3.session.Session().get_credentials() is None:
            return CheckResult("credentials", False, "no AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
        return CheckResult("credentials", True, "from the AWS credential chain")
    return CheckResult("credentials", True, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY set")


def check_bucket(client: S3Client, settings: S3Settings) -> CheckResult:
    """Reachable and writable: HeadBucket, then put + head + delete a tiny probe object."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket = settings.require_bucket()
    key = f"{settings.prefix}/_preflight/{uuid.uuid4().hex}.probe"
    try:
        client.head_bucket(Bucket=bucket)
    except (ClientError, BotoCoreError) as exc:
        return CheckResult("bucket", False, settings.redact(f"s3://{bucket} not reachable: {exc}"))
    try:
        client.put_object(Bucket=bucket, Key=key, Body=b"cxq_data preflight\n")
        client.head_object(Bucket=bucket, Key=key)
    except (ClientError, BotoCoreError) as exc:
        return CheckResult("bucket", False, settings.redact(f"s3://{bucket}/{settings.prefix} not writable: {exc}"))
    finally:
        try:
            client.delete_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError):
            pass
    return CheckResult("bucket", True, f"{settings.describe()} reachable and writable")
