"""The standalone script as a real process: SIGINT finishes the current date, kill -9 leaves a
consistent state, and the next run completes. Uploads go through a proxy that delays PUTs so the
signal lands while a date is being uploaded."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
from options_support import DATES, DAYS, batch_zip, settings_for
from s3servers import ACCESS_KEY, SECRET_KEY, FaultProxy, Faults

from cxq_data.options.state import read_marker
from cxq_data.options.validate import validate_remote
from cxq_data.paths import DataLayout

SCRIPT = Path(__file__).parents[1] / "scripts" / "upload_options_to_s3.py"


def _start(zpath: Path, data: Path, endpoint: str, bucket: str) -> subprocess.Popen:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
           "AWS_DEFAULT_REGION": "us-east-1", "S3_BUCKET_NAME": bucket, "S3_ENDPOINT_URL": endpoint,
           "CXQ_DATA_DIR": str(data), "AWS_REQUEST_CHECKSUM_CALCULATION": "when_required"}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(zpath), "--no-progress"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_upload_of(proxy: FaultProxy, date: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(f"date={date}/" in unquote(e["path"]) and e["method"] == "PUT" for e in list(proxy.faults.log)):
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    raise AssertionError(f"no upload of {date} seen")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGHUP])  # SIGHUP: the SSH session closed
def test_first_sigint_finishes_current_date_and_exits_cleanly(sig: signal.Signals, moto_endpoint: str,
                                                              tmp_path: Path) -> None:
    zpath, data = batch_zip(tmp_path), tmp_path / "data"
    bucket = settings_for(moto_endpoint).bucket
    with FaultProxy(moto_endpoint, Faults(delay_s=1.0)) as proxy:  # every run goes to the same endpoint
        proc = _start(zpath, data, proxy.endpoint, bucket)
        _wait_for_upload_of(proxy, DATES[0], proc)
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert "Traceback" not in err and sig.name in err and "interrupted; rerun to resume" in err
        layout = DataLayout(data)
        assert read_marker(layout, "SPY", DATES[0]) is not None  # the date in flight was finished
        assert [read_marker(layout, "SPY", d) for d in DATES[1:]] == [None, None]
        assert "pending" in out
        proxy.faults.delay_s = 0.0
        rerun = _start(zpath, data, proxy.endpoint, bucket)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        assert out.count("skipped") == 1 and out.count("uploaded") == 2
        assert validate_remote(zpath, settings=settings_for(proxy.endpoint, bucket=bucket), layout=layout).ok


@pytest.mark.slow
def test_kill_9_during_upload_leaves_consistent_state_and_next_run_completes(moto_endpoint: str,
                                                                              tmp_path: Path) -> None:
    zpath, data = batch_zip(tmp_path), tmp_path / "data"
    bucket = settings_for(moto_endpoint).bucket
    layout = DataLayout(data)
    with FaultProxy(moto_endpoint, Faults(delay_s=0.5)) as proxy:  # every run goes to the same endpoint
        proc = _start(zpath, data, proxy.endpoint, bucket)
        _wait_for_upload_of(proxy, DATES[1], proc)
        proc.kill()
        proc.wait()
        proxy.faults.delay_s = 0.0
        settings = settings_for(proxy.endpoint, bucket=bucket)
        assert read_marker(layout, "SPY", DATES[0]) is not None
        assert read_marker(layout, "SPY", DATES[1]) is None  # killed mid-upload: never marked verified
        report = validate_remote(zpath, settings=settings, layout=layout)
        statuses = {f.date: f.status for f in report.findings}
        assert statuses[DATES[0]] == "ok" and statuses[DATES[1]] in ("missing", "unverified")
        rerun = _start(zpath, data, proxy.endpoint, bucket)
        _out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        assert validate_remote(zpath, settings=settings, layout=layout).ok
    assert not [p for p in (data / "work").rglob("*") if p.is_file()]  # the killed run's temp files are gone


@pytest.mark.slow
def test_kill_9_during_conversion_leaves_no_object_no_marker_and_next_run_completes(moto_endpoint: str,
                                                                                      tmp_path: Path) -> None:
    # Days big enough (~0.4 s to convert) for the kill to land while the second date is being converted.
    zpath, data = batch_zip(tmp_path, days=DAYS[:2], instruments=1500, minutes=390), tmp_path / "data"
    bucket = settings_for(moto_endpoint).bucket
    layout = DataLayout(data)
    scratch = data / "work" / "options" / "upload" / "SPY" / DATES[1]
    with FaultProxy(moto_endpoint, Faults()) as proxy:  # every run goes to the same endpoint
        settings = settings_for(proxy.endpoint, bucket=bucket)
        proc = _start(zpath, data, proxy.endpoint, bucket)
        deadline = time.monotonic() + 120
        while not (scratch.is_dir() and any(scratch.iterdir())):
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.002)
        proc.kill()
        proc.wait()
        put_second = [e for e in list(proxy.faults.log) if f"date={DATES[1]}/" in unquote(e["path"]) and e["method"] == "PUT"]
        assert not put_second, "the kill landed after the conversion (test precondition)"
        assert read_marker(layout, "SPY", DATES[0]) is not None and read_marker(layout, "SPY", DATES[1]) is None
        statuses = {f.date: f.status for f in validate_remote(zpath, settings=settings, layout=layout).findings}
        assert statuses == {DATES[0]: "ok", DATES[1]: "missing"}  # nothing under the second date's final key
        rerun = _start(zpath, data, proxy.endpoint, bucket)
        out, err = rerun.communicate(timeout=120)
        assert rerun.returncode == 0, err
        assert out.count("skipped") == 1 and out.count("uploaded") == 1
        assert validate_remote(zpath, settings=settings, layout=layout).ok
    assert not [p for p in (data / "work").rglob("*") if p.is_file()]  # the killed run's partial Parquet is gone
