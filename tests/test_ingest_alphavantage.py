"""Alpha Vantage ingestor against the simulator: bodies, classification, retries, rate limit."""

from __future__ import annotations

import datetime as dt
import itertools
import json

import pytest
from ingest_support import *
from ingest_support import AV_KEY, with_

from cxq_data.errors import (
    ConfigError,
    InvalidApiKeyError,
    InvalidSymbolError,
    MalformedResponseError,
    PremiumRequiredError,
    QuotaExhaustedError,
    SymbolNotFoundError,
    TransientProviderError,
)
from cxq_data.ingest.alphavantage import AlphaVantageIngestor
from cxq_data.ingest.ratelimit import FileRateLimiter
from cxq_data.normalize.base import ParseRequest, parse_body
from cxq_data.simulator import OK, Fault, sample


def _normalized(resp, fmt):
    return {
        r["date"]: r for r in parse_body(fmt, ParseRequest(resp.body, "t", resp.fetched_at)).bars.to_pylist()
    }


def test_free_key_fetches_compact_daily(sim, settings, layout):
    [resp] = AlphaVantageIngestor(settings, layout).fetch_daily("MSFT", None, None)
    [req] = sim.data_requests("av")
    assert req.params == {
        "function": "TIME_SERIES_DAILY",
        "symbol": "MSFT",
        "outputsize": "compact",
        "datatype": "json",
        "apikey": AV_KEY,
    }
    assert resp.extra["format"] == "av_daily_json" and resp.params["apikey"] == "***"
    rows = _normalized(resp, "av_daily_json")
    truth = sample.true_bars("MSFT")[-100:]
    assert sorted(rows) == [b.date for b in truth]
    assert all(rows[b.date]["close"] == pytest.approx(b.close) for b in truth)


def test_premium_key_fetches_adjusted_full(sim, settings, layout):
    ing = AlphaVantageIngestor(with_(settings, av_premium=True, av_api_key="premium-" + AV_KEY), layout)
    [resp] = ing.fetch_daily("AAPL", dt.date(2023, 1, 1), None)
    assert sim.data_requests("av")[0].params["function"] == "TIME_SERIES_DAILY_ADJUSTED"
    assert resp.extra["format"] == "av_daily_adjusted_json" and resp.extra["requested_start"] == "2023-01-01"
    rows = _normalized(resp, "av_daily_adjusted_json")
    truth = sample.true_bars("AAPL")
    assert len(rows) == len(truth)
    split_day = rows[dt.date(2024, 6, 10)]
    assert split_day["close"] == pytest.approx(
        truth[[b.date for b in truth].index(dt.date(2024, 6, 10))].close
    )
    assert rows[dt.date(2024, 6, 7)]["close"] / split_day["close"] > 3  # as traded: the 4:1 split is visible


def test_missing_key_fails_before_any_request(sim, settings, layout):
    with pytest.raises(InvalidApiKeyError, match="AV_API_KEY"):
        AlphaVantageIngestor(with_(settings, av_api_key=None), layout).fetch_daily("AAPL", None, None)
    assert sim.requests == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("daily_quota", QuotaExhaustedError),
        ("premium_endpoint", PremiumRequiredError),
        ("premium_param", PremiumRequiredError),
        ("bad_key", InvalidApiKeyError),
        ("invalid_call", SymbolNotFoundError),
        ("old_note", QuotaExhaustedError),
    ],
)
def test_error_bodies_are_classified_and_not_retried(sim, settings, layout, body, error):
    sim.script("av", "AAPL", [Fault.av(body), OK])
    with pytest.raises(error, match="AAPL"):
        AlphaVantageIngestor(settings, layout).fetch_daily("AAPL", None, None)
    assert len(sim.data_requests("av")) == 1


def test_server_premium_rules(sim, settings, layout):
    with pytest.raises(PremiumRequiredError, match="premium endpoint"):
        AlphaVantageIngestor(with_(settings, av_premium=True), layout).fetch_daily("AAPL", None, None)


def test_burst_message_is_retried(sim, settings, layout):
    sim.script("av", "AAPL", [Fault.av("burst"), Fault.av("burst"), OK])
    [resp] = AlphaVantageIngestor(settings, layout).fetch_daily("AAPL", None, None)
    assert "Time Series (Daily)" in json.loads(resp.body)
    assert len(sim.data_requests("av")) == 3


def test_http_429_and_5xx_retried_then_give_up(sim, settings, layout):
    sim.script("av", "AAPL", [Fault.http(429), Fault.http(500), OK])
    AlphaVantageIngestor(settings, layout).fetch_daily("AAPL", None, None)
    sim.script("av", "MSFT", [Fault.http(503)] * 3)
    with pytest.raises(TransientProviderError, match="HTTP 503"):
        AlphaVantageIngestor(settings, layout).fetch_daily("MSFT", None, None)


def test_timeout_truncated_html_empty(sim, settings, layout):
    ing = AlphaVantageIngestor(with_(settings, timeout_s=0.2, max_retries=1), layout)
    sim.script("av", "AAPL", [Fault.timeout(1.0), Fault.timeout(1.0)])
    with pytest.raises(TransientProviderError, match="timed out"):
        ing.fetch_daily("AAPL", None, None)
    sim.script("av", "AAPL", [Fault.truncated()])
    with pytest.raises(MalformedResponseError, match="truncated"):
        ing.fetch_daily("AAPL", None, None)
    sim.script("av", "AAPL", [Fault.html()])
    with pytest.raises(MalformedResponseError, match="HTML"):
        ing.fetch_daily("AAPL", None, None)
    sim.script("av", "AAPL", [Fault.empty()])
    with pytest.raises(SymbolNotFoundError, match="empty"):
        ing.fetch_daily("AAPL", None, None)


def test_intraday_interval_mapping(sim, settings, layout):
    [resp] = AlphaVantageIngestor(settings, layout).fetch_intraday("AAPL", "5m")
    assert sim.data_requests("av")[0].params["interval"] == "5min"
    assert resp.kind == "intraday-5m" and resp.extra["format"] == "av_intraday_json"
    bars = parse_body("av_intraday_json", ParseRequest(resp.body, "t", resp.fetched_at, intraday=True)).bars
    assert bars.num_rows == 100
    with pytest.raises(ConfigError, match="90m"):
        AlphaVantageIngestor(settings, layout).fetch_intraday("AAPL", "90m")
    with pytest.raises(ConfigError):
        AlphaVantageIngestor(settings, layout).fetch_intraday("AAPL", "7m")


@pytest.mark.parametrize("bad", ["../x", "/", "A\x00B", "AA PL"])
def test_bad_symbols_never_reach_the_server(sim, settings, layout, bad):
    with pytest.raises(InvalidSymbolError):
        AlphaVantageIngestor(settings, layout).fetch_daily(bad, None, None)
    assert sim.requests == []


def test_daily_cap_is_local_and_quota_message_stops_later_requests(sim, settings, layout):
    ing = AlphaVantageIngestor(with_(settings, av_daily_limit=2), layout)
    ing.fetch_daily("AAPL", None, None)
    ing.fetch_daily("MSFT", None, None)
    with pytest.raises(QuotaExhaustedError, match="daily quota of 2"):
        ing.fetch_daily("BRK.B", None, None)
    assert len(sim.data_requests("av")) == 2  # the third was refused locally
    state = json.loads((layout.state / "ratelimit" / "alphavantage.json").read_text())
    assert state["count"] == 2 and state["day"] == dt.datetime.now(dt.UTC).date().isoformat()


def test_provider_quota_message_marks_the_day_exhausted(sim, settings, layout):
    sim.script("av", "AAPL", [Fault.av("daily_quota")])
    ing = AlphaVantageIngestor(settings, layout)
    with pytest.raises(QuotaExhaustedError):
        ing.fetch_daily("AAPL", None, None)
    with pytest.raises(QuotaExhaustedError, match="used up"):
        ing.fetch_daily("MSFT", None, None)
    assert len(sim.data_requests("av")) == 1


def test_premium_has_no_daily_cap(sim, settings, layout):
    ing = AlphaVantageIngestor(
        with_(settings, av_premium=True, av_api_key="premium-x", av_daily_limit=1), layout
    )
    ing.fetch_daily("AAPL", None, None)
    ing.fetch_daily("MSFT", None, None)
    assert len(sim.data_requests("av")) == 2


def test_min_interval_between_requests(sim, settings, layout):
    ing = AlphaVantageIngestor(with_(settings, av_min_interval_s=0.3), layout)
    for sym in ("AAPL", "MSFT", "BRK.B"):
        ing.fetch_daily(sym, None, None)
    times = [r.at for r in sim.data_requests("av")]
    assert all(b - a >= 0.28 for a, b in itertools.pairwise(times))


def test_limiter_resets_on_a_new_utc_day(tmp_path):
    now = [dt.datetime(2025, 1, 1, 23, 59, 59, tzinfo=dt.UTC).timestamp()]
    lim = FileRateLimiter(tmp_path / "av.json", min_interval_s=0.0, daily_limit=1, clock=lambda: now[0])
    lim.acquire()
    with pytest.raises(QuotaExhaustedError, match="2025-01-01"):
        lim.acquire()
    now[0] += 2
    assert lim.acquire().count == 1 and lim.state().day == "2025-01-02"
