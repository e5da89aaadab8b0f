"""Yahoo ingestor (through yfinance's YfData session) against the local simulator."""

from __future__ import annotations

import datetime as dt
import json
import socket
import zoneinfo

import pytest
from ingest_support import *
from ingest_support import with_

from cxq_data.errors import (
    InvalidSymbolError,
    MalformedResponseError,
    ProviderError,
    RateLimitedError,
    SymbolNotFoundError,
    TransientProviderError,
)
from cxq_data.ingest.yahoo import YahooIngestor
from cxq_data.normalize.base import ParseRequest, parse_body
from cxq_data.simulator import OK, Fault, sample

START, END = dt.date(2024, 6, 3), dt.date(2024, 6, 14)  # the AAPL 4:1 split (2024-06-10) is inside


def _ny_midnight(day: dt.date) -> int:
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=zoneinfo.ZoneInfo("America/New_York")).timestamp())


def test_daily_fetch_stores_chart_json_and_normalizes_to_the_truth(sim, settings, layout):
    [resp] = YahooIngestor(settings, layout).fetch_daily("AAPL", START, END)
    [req] = sim.data_requests("yahoo")
    assert req.params["period1"] == str(_ny_midnight(START))
    assert req.params["period2"] == str(_ny_midnight(END + dt.timedelta(days=1)))  # end inclusive
    assert req.params["events"] == "div,splits" and req.params["interval"] == "1d"
    assert (
        resp.extra["format"] == "yahoo_chart_json" and resp.extra["exchange_timezone"] == "America/New_York"
    )
    assert resp.kind == "daily" and resp.symbol == "AAPL" and resp.ext == "json"
    doc = json.loads(resp.body)
    assert next(iter(doc["chart"]["result"][0]["events"]["splits"].values()))["numerator"] == 4.0
    bars = parse_body("yahoo_chart_json", ParseRequest(resp.body, "t", resp.fetched_at)).bars.to_pylist()
    truth = {b.date: b for b in sample.true_bars("AAPL") if START <= b.date <= END}
    assert [b["date"] for b in bars] == sorted(truth)
    for row in bars:  # as traded again: pre-split bars ~4x the post-split ones
        assert row["close"] == pytest.approx(truth[row["date"]].close, rel=1e-9)
        assert row["adjusted_close"] == pytest.approx(truth[row["date"]].adjusted_close, rel=1e-9)


def test_brk_b_is_mapped_to_yahoo_spelling(sim, settings, layout):
    [resp] = YahooIngestor(settings, layout).fetch_daily("brk.b", START, END)
    assert sim.data_requests("yahoo")[0].path.endswith("/chart/BRK-B")
    assert resp.symbol == "BRK.B" and resp.extra["provider_symbol"] == "BRK-B"


def test_non_us_exchange_timezone_is_recorded(sim, settings, layout):
    [resp] = YahooIngestor(settings, layout).fetch_daily("BHP.AX", dt.date(2025, 3, 3), dt.date(2025, 3, 7))
    assert resp.extra["exchange_timezone"] == "Australia/Sydney"
    period1 = int(sim.data_requests("yahoo")[0].params["period1"])
    assert dt.datetime.fromtimestamp(period1, zoneinfo.ZoneInfo("Australia/Sydney")).time() == dt.time(0)
    stamps = json.loads(resp.body)["chart"]["result"][0]["timestamp"]
    first = dt.datetime.fromtimestamp(stamps[0], dt.UTC)
    assert first.date() == dt.date(2025, 3, 2)  # UTC date is the day before the Sydney session


def test_429_twice_then_success_is_retried(sim, settings, layout):
    # yfinance retries once itself; two 429s make it raise YFRateLimitError, which we back off from.
    sim.script("yahoo", "MSFT", [Fault.http(429), Fault.http(429), OK])
    [resp] = YahooIngestor(settings, layout).fetch_daily("MSFT", START, END)
    assert json.loads(resp.body)["chart"]["result"][0]["timestamp"]
    assert len(sim.data_requests("yahoo", "MSFT")) == 3


def test_rate_limited_beyond_retries(sim, settings, layout):
    sim.script("yahoo", "MSFT", [Fault.http(429)] * 10)
    with pytest.raises(RateLimitedError, match="MSFT"):
        YahooIngestor(with_(settings, max_retries=1), layout).fetch_daily("MSFT", START, END)


def test_unknown_symbol_is_symbol_not_found(sim, settings, layout):
    with pytest.raises(SymbolNotFoundError, match="ZZZZ"):
        YahooIngestor(settings, layout).fetch_daily("ZZZZ", START, END)


@pytest.mark.parametrize("status", [400, 422])
def test_rejected_request_is_a_provider_error_not_retried(sim, settings, layout, status):
    sim.script("yahoo", "AAPL", [Fault.http(status)] * 2)
    with pytest.raises(ProviderError, match="rejected") as info:
        YahooIngestor(settings, layout).fetch_daily("AAPL", START, END)
    assert not info.value.retryable
    assert len(sim.data_requests("yahoo")) == 2  # yfinance's own single retry, none from us


def test_intraday_too_old_is_422_from_the_server(sim, settings, layout):
    with pytest.raises(ProviderError, match="within the last 60 days"):
        YahooIngestor(settings, layout)._fetch(
            "AAPL", "intraday-5m", {"period1": 1_700_000_000, "period2": 1_700_086_400, "interval": "5m"}, {}
        )


def test_outage_page_is_transient_and_retried(sim, settings, layout):
    sim.script("yahoo", "AAPL", [Fault.html(), OK])
    [resp] = YahooIngestor(settings, layout).fetch_daily("AAPL", START, END)
    assert resp.http_status == 200
    sim.script("yahoo", "AAPL", [Fault.html()] * 5)
    with pytest.raises(TransientProviderError, match="currently down"):
        YahooIngestor(settings, layout).fetch_daily("AAPL", START, END)


def test_server_error_then_success(sim, settings, layout):
    sim.script("yahoo", "AAPL", [Fault.http(503), Fault.http(502), OK])
    [resp] = YahooIngestor(settings, layout).fetch_daily("AAPL", START, END)
    assert json.loads(resp.body)["chart"]["error"] is None


def test_timeout_is_transient_then_fails(sim, settings, layout):
    sim.script("yahoo", "AAPL", [Fault.timeout(1.0)] * 3)
    with pytest.raises(TransientProviderError, match="AAPL"):
        YahooIngestor(with_(settings, timeout_s=0.2, max_retries=2), layout).fetch_daily("AAPL", START, END)
    assert len(sim.data_requests("yahoo")) == 3


def test_refused_connection_is_a_transient_connection_error(settings, layout):
    """Not `AttributeError: module 'requests.exceptions' has no attribute 'DNSError'` (yfinance's plain
    requests backend), which hid the real cause and was not retried."""
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"
    with pytest.raises(TransientProviderError, match="AAPL") as info:
        YahooIngestor(with_(settings, yahoo_base_url=dead, max_retries=1), layout).fetch_daily("AAPL", START, END)
    assert "ConnectionError" in str(info.value) and "DNSError" not in str(info.value)


def test_truncated_json_is_malformed(sim, settings, layout):
    sim.script("yahoo", "AAPL", [Fault.truncated()])
    with pytest.raises(MalformedResponseError, match="truncated or invalid JSON"):
        YahooIngestor(settings, layout).fetch_daily("AAPL", START, END)


def test_empty_result_is_symbol_not_found(sim, settings, layout):
    sim.script("yahoo", "AAPL", [Fault.empty()])
    with pytest.raises(SymbolNotFoundError, match="no price data"):
        YahooIngestor(settings, layout).fetch_daily("AAPL", START, END)
    with pytest.raises(SymbolNotFoundError):  # a range without sessions: same answer from the server
        YahooIngestor(settings, layout).fetch_daily("AAPL", dt.date(2024, 6, 8), dt.date(2024, 6, 9))


@pytest.mark.parametrize("bad", ["../x", "/", "A\x00B", "AA PL", "a/b", ""])
def test_bad_symbols_never_reach_the_server(sim, settings, layout, bad):
    with pytest.raises(InvalidSymbolError):
        YahooIngestor(settings, layout).fetch_daily(bad, START, END)
    assert sim.requests == []


def test_intraday_fetch(sim, settings, layout):
    [resp] = YahooIngestor(settings, layout).fetch_intraday("MSFT", "5min")
    assert resp.kind == "intraday-5m" and resp.extra["interval"] == "5m"
    assert sim.data_requests("yahoo")[0].params["interval"] == "5m"
    bars = parse_body("yahoo_chart_json", ParseRequest(resp.body, "t", resp.fetched_at, intraday=True)).bars
    assert bars.num_rows == 21 * 78  # one month of 5-minute bars, 09:30-16:00
