"""The provider simulator and its embedded sample: faithful per-provider rendering and defects."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys

import pytest
import requests
from ingest_support import *

from cxq_data.normalize.base import ParseRequest, parse_body
from cxq_data.simulator import OK, Fault, sample

NOW = dt.datetime(2026, 1, 2, tzinfo=dt.UTC)


def _parse(fmt, body, intraday=False):
    return parse_body(fmt, ParseRequest(body, "sim", NOW, intraday=intraday))


def test_sample_is_deterministic_and_on_the_nyse_calendar():
    import exchange_calendars as xcals

    bars = sample.true_bars("AAPL")
    expected = xcals.get_calendar("XNYS").sessions_in_range("2023-01-03", "2025-12-31")
    assert [b.date for b in bars] == [d.date() for d in expected]
    assert bars == sample.true_bars("AAPL")
    assert [b.date for b in bars if b.split_ratio != 1] == [dt.date(2024, 6, 10)]
    assert len([b for b in bars if b.dividend]) == 12 and not any(
        b.dividend for b in sample.true_bars("BRK.B")
    )
    assert all(b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in bars)


def test_defects_are_labelled(sim):
    checks = {(d["symbol"], d["source"], d["check"]): d["date"] for d in sample.DEFECTS}
    assert checks == {
        ("MSFT", "stooq", "price_unit_jump"): "2024-03-14",
        ("MSFT", "yfinance", "missing_session"): "2025-06-12",
    }
    body = requests.get(f"{sim.base_url}/v8/finance/chart/MSFT", params={"range": "1y"}).content
    dates = {r["date"] for r in _parse("yahoo_chart_json", body).bars.to_pylist()}
    assert dt.date(2025, 6, 12) not in dates and dt.date(2025, 6, 11) in dates


def test_yahoo_full_history_normalizes_back_to_truth(sim):
    body = requests.get(
        f"{sim.base_url}/v8/finance/chart/AAPL",
        params={"period1": 0, "period2": 2_000_000_000, "interval": "1d", "events": "div,splits"},
    ).content
    norm = _parse("yahoo_chart_json", body)
    truth = {b.date: b for b in sample.true_bars("AAPL")}
    rows = norm.bars.to_pylist()
    assert len(rows) == len(truth)
    for r in rows:
        assert r["close"] == pytest.approx(truth[r["date"]].close, rel=1e-9)
        assert r["volume"] == pytest.approx(truth[r["date"]].volume, abs=2)
    actions = norm.actions.to_pylist()
    assert {a["date"] for a in actions if a.get("dividend")} == {d for d, b in truth.items() if b.dividend}
    doc = json.loads(body)["chart"]["result"][0]
    assert doc["meta"]["exchangeTimezoneName"] == "America/New_York"
    stamp = dt.datetime.fromtimestamp(doc["timestamp"][0], dt.UTC)
    assert stamp.time() == dt.time(14, 30)  # 09:30 New York in winter


def test_sydney_timestamps_and_timezone_override(sim):
    url = f"{sim.base_url}/v8/finance/chart/BHP.AX"
    doc = requests.get(url, params={"range": "5d"}).json()["chart"]["result"][0]
    assert doc["meta"]["exchangeTimezoneName"] == "Australia/Sydney"
    utc_dates = [dt.datetime.fromtimestamp(t, dt.UTC).date() for t in doc["timestamp"]]
    assert utc_dates[-1] == dt.date(2025, 12, 30)  # the 2025-12-31 Sydney session opens on the 30th UTC
    sim.set_exchange_timezone("AAPL", "Asia/Tokyo")
    meta = requests.get(f"{sim.base_url}/v8/finance/chart/AAPL", params={"range": "5d"}).json()
    assert meta["chart"]["result"][0]["meta"]["exchangeTimezoneName"] == "Asia/Tokyo"


def test_alpha_vantage_adjusted_matches_truth_and_free_key_rules(sim):
    q = f"{sim.base_url}/query"
    body = requests.get(
        q,
        params={
            "function": "TIME_SERIES_DAILY_ADJUSTED",
            "symbol": "AAPL",
            "outputsize": "full",
            "apikey": "premium-k",
        },
    ).content
    rows = {r["date"]: r for r in _parse("av_daily_adjusted_json", body).bars.to_pylist()}
    for b in sample.true_bars("AAPL"):
        assert rows[b.date]["close"] == pytest.approx(b.close)
        assert rows[b.date]["adjusted_close"] == pytest.approx(b.adjusted_close, abs=1e-4)
    free = requests.get(q, params={"function": "TIME_SERIES_DAILY_ADJUSTED", "symbol": "AAPL", "apikey": "k"})
    assert "premium endpoint" in free.json()["Information"] and free.status_code == 200
    assert (
        "apikey is invalid"
        in requests.get(q, params={"function": "TIME_SERIES_DAILY"}).json()["Error Message"]
    )


def test_stooq_failure_pages(sim):
    url = f"{sim.base_url}/q/d/l/"
    assert "get_apikey" in requests.get(url, params={"s": "aapl.us", "i": "d"}).text
    assert requests.get(url, params={"s": "nope.us", "apikey": "k"}).text == "No data"
    sim.script("stooq", "AAPL", [Fault.html(), OK])
    assert "__verify" in requests.get(url, params={"s": "aapl.us", "apikey": "k"}).text
    assert requests.get(url, params={"s": "aapl.us", "apikey": "k"}).text.startswith("Date,Open")


def test_av_daily_quota_and_burst_simulation():
    from cxq_data.simulator import ProviderSimulator

    with ProviderSimulator(av_daily_limit=1, av_burst_interval_s=0.5) as s:
        q, p = f"{s.base_url}/query", {"function": "TIME_SERIES_DAILY", "symbol": "MSFT", "apikey": "k"}
        assert "Time Series (Daily)" in requests.get(q, params=p).json()
        assert "spreading out" in requests.get(q, params=p).json()["Information"]


def test_standalone_prints_exports():
    proc = subprocess.Popen(
        [sys.executable, "-m", "cxq_data.simulator", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    try:
        lines = [proc.stdout.readline().strip() for _ in range(3)]
        assert [line.split("=")[0] for line in lines] == [
            "export CXQ_YAHOO_BASE_URL",
            "export CXQ_AV_BASE_URL",
            "export CXQ_STOOQ_BASE_URL",
        ]
        base = lines[0].split("=", 1)[1]
        assert requests.get(f"{base}/v1/test/getcrumb", timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)
