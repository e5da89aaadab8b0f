"""Helpers shared by the options pipeline tests (synthetic batch ZIPs, settings for a test server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from s3servers import ACCESS_KEY, SECRET_KEY, new_bucket

from cxq_data.options.s3 import S3Settings
from cxq_data.options.synth_batch import write_batch_zip

DAYS = [dt.date(2025, 8, 7), dt.date(2025, 8, 8), dt.date(2025, 8, 11)]
DATES = [d.isoformat() for d in DAYS]


def batch_zip(folder: Path, *, corrupt=None, days=DAYS, instruments: int = 12, minutes: int = 8) -> Path:
    return write_batch_zip(folder / "OPRA-20250807-TEST000001.zip", list(days), corrupt=corrupt,
                           instruments=instruments, minutes=minutes)


def settings_for(endpoint: str, bucket: str | None = None, **kw) -> S3Settings:
    values = {"bucket": bucket or new_bucket(endpoint), "endpoint_url": endpoint, "region": "us-east-1",
                  "access_key_id": ACCESS_KEY, "secret_access_key": SECRET_KEY, "backoff_base_s": 0.01}
    values.update(kw)
    return S3Settings(**values)
