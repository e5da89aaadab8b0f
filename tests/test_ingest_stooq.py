"""Stooq ingestor against the simulator: CSV, failure bodies, challenge pages."""

from __future__ import annotations

import datetime as dt

import pytest
from ingest_support import *
from ingest_support import STOOQ_KEY, with_

from cxq_data.errors import (
    ChallengePageError,
    InvalidSymbolError,
    MalformedResponseError,
    QuotaExhaustedError,
    SymbolNotFoundError,
    TransientProviderError,
)
from cxq_data.ingest.stooq import StooqIngestor
from cxq_data.normalize.base import ParseRequest, parse_body
from cxq_data.simulator import OK, Fault, sample


def test_daily_csv_with_range_and_key(sim, settings, layout):
    [resp] = StooqIngestor(settings, layout).fetch_daily("BRK.B", dt.date(2024, 3, 1), dt.date(2024, 3, 29))
    [req] = sim.data_requests("stooq")
    assert req.params == {"s": "brk-b.us", "i": "d", "d1": "20240301", "d2": "20240329", "apikey": STOOQ_KEY}
    assert resp.params["apikey"] == "***" and resp.extra["format"] == "stooq_csv" and resp.ext == "csv"
    rows = parse_body("stooq_csv", ParseRequest(resp.body, "t", resp.fetched_at)).bars.to_pylist()
    truth = [b for b in sample.true_bars("BRK.B") if dt.date(2024, 3, 1) <= b.date <= dt.date(2024, 3, 29)]
    assert [r["date"] for r in rows] == [b.date for b in truth]
    assert [r["close"] for r in rows] == pytest.approx([b.close for b in truth])


def test_stooq_levels_are_split_adjusted_and_carry_the_defect(sim, settings, layout):
    [resp] = StooqIngestor(settings, layout).fetch_daily("MSFT", dt.date(2024, 3, 13), dt.date(2024, 3, 15))
    closes = [float(line.split(",")[4]) for line in resp.body.decode().splitlines()[1:]]
    assert 80 < closes[1] / closes[0] < 120 and 80 < closes[1] / closes[2] < 120  # the labelled 100x bar
    [aapl] = StooqIngestor(settings, layout).fetch_daily("AAPL", dt.date(2024, 6, 7), dt.date(2024, 6, 10))
    before, after = (float(line.split(",")[4]) for line in aapl.body.decode().splitlines()[1:])
    assert 0.8 < after / before < 1.2  # no 4x jump across the split


@pytest.mark.parametrize(
    ("fault", "error", "text"),
    [
        (Fault.stooq("no_data"), SymbolNotFoundError, "no data"),
        (Fault.stooq("limit"), QuotaExhaustedError, "daily hits limit"),
        (Fault.stooq("apikey_page"), ChallengePageError, "ingest import --source stooq"),
        (Fault.stooq("pow_challenge"), ChallengePageError, "proof-of-work"),
        (Fault.html(), ChallengePageError, "download"),
        (Fault.truncated(), MalformedResponseError, "truncated download"),
        (Fault.body("Date,Open,High,Low,Close,Volume\r\n"), SymbolNotFoundError, "no rows"),
    ],
)
def test_failure_bodies(sim, settings, layout, fault, error, text):
    sim.script("stooq", "AAPL", [fault, OK])
    with pytest.raises(error, match=text):
        StooqIngestor(settings, layout).fetch_daily("AAPL", None, None)
    assert len(sim.data_requests("stooq")) == 1


def test_missing_key_gets_the_apikey_page(sim, settings, layout):
    with pytest.raises(ChallengePageError, match="STOOQ_API_KEY"):
        StooqIngestor(with_(settings, stooq_api_key=None), layout).fetch_daily("AAPL", None, None)
    assert "apikey" not in sim.data_requests("stooq")[0].params


def test_unknown_symbol_and_empty_range(sim, settings, layout):
    with pytest.raises(SymbolNotFoundError):
        StooqIngestor(settings, layout).fetch_daily("ZZZZ", None, None)
    with pytest.raises(SymbolNotFoundError):
        StooqIngestor(settings, layout).fetch_daily("AAPL", dt.date(2024, 6, 8), dt.date(2024, 6, 9))


def test_429_then_success_and_timeouts(sim, settings, layout):
    sim.script("stooq", "AAPL", [Fault.http(429), OK])
    StooqIngestor(settings, layout).fetch_daily("AAPL", None, None)
    assert len(sim.data_requests("stooq")) == 2
    sim.script("stooq", "MSFT", [Fault.timeout(1.0)] * 2)
    with pytest.raises(TransientProviderError, match="timed out"):
        StooqIngestor(with_(settings, timeout_s=0.2, max_retries=1), layout).fetch_daily("MSFT", None, None)


@pytest.mark.parametrize("bad", ["../x", "/", "A\x00B", "AA PL", "..", "x" * 40])
def test_bad_symbols_never_reach_the_server(sim, settings, layout, bad):
    with pytest.raises(InvalidSymbolError):
        StooqIngestor(settings, layout).fetch_daily(bad, None, None)
    assert sim.requests == []
