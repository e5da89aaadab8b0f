"""Shared fixtures. In CI (CI=true) a skipped test is a failure: every test must run there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).parent
TEST_DATA = TESTS_DIR / "data"
REPO_ROOT = TESTS_DIR.parent

_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped:
        _skipped.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() == "true" and _skipped:
        print(f"\nCI: {len(_skipped)} test(s) were skipped; in CI every test must run:")
        for nodeid in _skipped:
            print(f"  {nodeid}")
        session.exitstatus = 1


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test may see the developer's keys, data dir or AWS profile."""
    for name in ("AV_API_KEY", "STOOQ_API_KEY", "AWS_PROFILE", "S3_BUCKET_NAME", "S3_ENDPOINT_URL",
                 "S3_PREFIX", "CXQ_DATA_DIR", "AV_PREMIUM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("YF_DISABLE_CURL_CFFI", "1")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


pytest_plugins = ["s3servers"]  # S3 test servers and the fault proxy (options tests)
