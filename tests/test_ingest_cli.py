"""``cxq_data ingest daily|intraday`` through click's CliRunner against the simulator."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from ingest_support import *
from ingest_support import AV_KEY, STOOQ_KEY, all_bytes_under

from cxq_data.cli import cli
from cxq_data.raw import list_raw
from cxq_data.simulator import Fault


@pytest.fixture
def env(sim, monkeypatch):
    for name, value in {
        **sim.env(),
        "AV_API_KEY": AV_KEY,
        "STOOQ_API_KEY": STOOQ_KEY,
        "CXQ_HTTP_TIMEOUT": "2",
        "CXQ_BACKOFF_BASE": "0.01",
        "CXQ_HTTP_RETRIES": "1",
        "CXQ_AV_MIN_INTERVAL": "0",
    }.items():
        monkeypatch.setenv(name, value)


def _invoke(data_dir, *args):
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), "ingest", *args], catch_exceptions=False)


def test_daily_success_exit_0_and_summary(env, data_dir):
    result = _invoke(
        data_dir,
        "daily",
        "--source",
        "yf",
        "--symbols",
        "AAPL,brk.b",
        "--start",
        "2024-01-02",
        "--end",
        "2024-12-31",
        "--no-progress",
    )
    assert result.exit_code == 0, result.output
    assert "fetched 2, skipped 0, failed 0" in result.output
    assert len(list_raw(data_dir_layout(data_dir), "yfinance", "BRK.B")) == 1


def data_dir_layout(data_dir):
    from cxq_data.paths import DataLayout

    return DataLayout(data_dir)


def test_failure_exit_1_with_reasons_json(env, data_dir, sim):
    sim.script("av", "MSFT", [Fault.av("premium_endpoint")])
    result = _invoke(
        data_dir, "daily", "--source", "av", "--symbols", "AAPL,MSFT,a/b", "--no-progress", "--format", "json"
    )
    assert result.exit_code == 1
    rows = json.loads(result.stdout)
    assert [(r["symbol"], r["status"]) for r in rows] == [
        ("AAPL", "fetched"),
        ("MSFT", "failed"),
        ("a/b", "failed"),
    ]
    assert "premium" in rows[1]["reason"] and "invalid symbol" in rows[2]["reason"]
    assert rows[0]["raw_files"][0].startswith("raw/alphavantage/AAPL/daily/")
    assert AV_KEY not in result.output and AV_KEY.encode() not in all_bytes_under(data_dir)


def test_dry_run_prints_redacted_requests_and_writes_nothing(env, data_dir, sim):
    result = _invoke(
        data_dir, "daily", "--source", "stooq", "--symbols", "BRK.B", "--start", "2024-01-02", "--dry-run"
    )
    assert result.exit_code == 0
    assert "s=brk-b.us" in result.output and "apikey=***" in result.output and STOOQ_KEY not in result.output
    assert sim.requests == [] and not any(data_dir.iterdir())


def test_intraday_command(env, data_dir):
    result = _invoke(
        data_dir, "intraday", "--source", "av", "--symbols", "MSFT", "--interval", "15m", "--no-progress"
    )
    assert result.exit_code == 0, result.output
    assert len(list_raw(data_dir_layout(data_dir), "alphavantage", "MSFT", "intraday-15m")) == 1


def test_bad_arguments(env, data_dir):
    assert _invoke(data_dir, "daily", "--source", "bloomberg", "--symbols", "AAPL").exit_code == 2
    bad_date = _invoke(data_dir, "daily", "--source", "yf", "--symbols", "AAPL", "--start", "2024-13-01")
    assert bad_date.exit_code == 2 and "YYYY-MM-DD" in bad_date.output
    bad_interval = _invoke(data_dir, "intraday", "--source", "yf", "--symbols", "AAPL", "--interval", "7m")
    assert bad_interval.exit_code == 1 and "invalid intraday interval" in bad_interval.output
    assert not any(data_dir.iterdir())


def test_an_api_key_of_a_few_characters_is_refused_before_any_request(env, data_dir, sim, monkeypatch):
    """A 1-3 character key made every response "contain a secret" and was redacted out of every message."""
    monkeypatch.setenv("AV_API_KEY", "a1")
    res = CliRunner().invoke(cli, ["--data-dir", str(data_dir), "ingest", "daily", "--source", "av",
                                   "--symbols", "AAPL", "--no-progress"])
    assert res.exit_code == 1 and "AV_API_KEY has 2 character(s): too short to be an API key" in res.output
    assert "a1" not in res.output.replace("AV_API_KEY", "") and not any(data_dir.iterdir())
    monkeypatch.setenv("AV_API_KEY", f"  {AV_KEY}\n")  # whitespace around a pasted key is not part of it
    ok = _invoke(data_dir, "daily", "--source", "av", "--symbols", "AAPL", "--no-progress")
    assert ok.exit_code == 0, ok.output


def test_help_explains():
    result = CliRunner().invoke(cli, ["ingest", "daily", "--help"])
    assert result.exit_code == 0 and "--dry-run" in result.output and "AV_PREMIUM" in result.output
