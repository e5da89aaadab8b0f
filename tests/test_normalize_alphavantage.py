"""Alpha Vantage JSON -> canonical bars/actions (daily, daily adjusted, intraday) and error bodies."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cxq_data.errors import MalformedResponseError
from cxq_data.normalize import ParseRequest, parse_body
from cxq_data.schema import INTRADAY_SCHEMA, PARTITION_SCHEMA

FETCHED = dt.datetime(2024, 6, 8, 1, 0, tzinfo=dt.UTC)
UTC = dt.UTC


def daily_body() -> bytes:
    return json.dumps({
        "Meta Data": {"1. Information": "Daily Prices (open, high, low, close) and Volumes", "2. Symbol": "IBM",
                      "3. Last Refreshed": "2024-06-07", "4. Output Size": "Compact", "5. Time Zone": "US/Eastern"},
        "Time Series (Daily)": {
            "2024-06-07": {"1. open": "168.1800", "2. high": "171.3050", "3. low": "168.0600",
                           "4. close": "170.0100", "5. volume": "3475495"},
            "2024-06-06": {"1. open": "167.3800", "2. high": "168.4400", "3. low": "166.8000",
                           "4. close": "168.2000", "5. volume": "2207263"},
        },
    }).encode()


def adjusted_body() -> bytes:
    """TSLA around its 5-for-1 split (2020-08-31) plus a made-up dividend on 2020-08-28."""
    def day(o, h, lo, c, adj, vol, div, split):
        return {"1. open": o, "2. high": h, "3. low": lo, "4. close": c, "5. adjusted close": adj, "6. volume": vol,
                "7. dividend amount": div, "8. split coefficient": split}
    return json.dumps({
        "Meta Data": {"1. Information": "Daily Time Series with Splits and Dividend Events", "2. Symbol": "TSLA",
                      "5. Time Zone": "US/Eastern"},
        "Time Series (Daily)": {
            "2020-08-31": day("444.6100", "500.1400", "440.1100", "498.3200", "498.3200", "118374400", "0.0000", "5.0"),
            "2020-08-28": day("2295.1200", "2318.4900", "2186.5200", "2213.4000", "442.6800", "20081157", "0.5000",
                              "1.0"),
        },
    }).encode()


def parse(fmt: str, body: bytes) -> tuple[list[dict], list[dict]]:
    out = parse_body(fmt, ParseRequest(body, "raw/av/IBM.json", FETCHED))
    return out.bars.to_pylist(), out.actions.to_pylist()


def test_daily_is_as_traded_sorted_without_adjusted_close():
    bars, actions = parse("av_daily_json", daily_body())
    assert [b["date"] for b in bars] == [dt.date(2024, 6, 6), dt.date(2024, 6, 7)]
    assert bars[1]["close"] == 170.01 and bars[1]["high"] == 171.305 and bars[1]["volume"] == 3_475_495
    assert all(b["adjusted_close"] is None for b in bars)
    assert actions == []


def test_daily_adjusted_keeps_as_traded_close_and_records_split_and_dividend():
    out = parse_body("av_daily_adjusted_json", ParseRequest(adjusted_body(), "x", FETCHED))
    assert out.bars.schema == PARTITION_SCHEMA
    bars = {b["date"]: b for b in out.bars.to_pylist()}
    assert bars[dt.date(2020, 8, 28)]["close"] == 2213.40  # as traded, before the split
    assert bars[dt.date(2020, 8, 28)]["adjusted_close"] == 442.68
    assert bars[dt.date(2020, 8, 28)]["volume"] == 20_081_157
    actions = [(a["date"], a["dividend"], a["split_ratio"]) for a in out.actions.to_pylist()]
    assert actions == [(dt.date(2020, 8, 28), 0.5, None), (dt.date(2020, 8, 31), None, 5.0)]


def test_intraday_eastern_time_becomes_utc_in_summer_and_winter():
    body = json.dumps({
        "Meta Data": {"1. Information": "Intraday (5min) open, high, low, close prices and volume", "2. Symbol": "IBM",
                      "4. Interval": "5min", "6. Time Zone": "US/Eastern"},
        "Time Series (5min)": {
            "2024-06-07 15:55:00": {"1. open": "1", "2. high": "2", "3. low": "0.5", "4. close": "1.5", "5. volume": "10"},
            "2024-01-05 09:30:00": {"1. open": "1", "2. high": "2", "3. low": "0.5", "4. close": "1.5", "5. volume": "10"},
        },
    }).encode()
    out = parse_body("av_intraday_json", ParseRequest(body, "x", FETCHED, intraday=True))
    assert out.bars.schema == INTRADAY_SCHEMA
    assert out.bars.column("ts").to_pylist() == [dt.datetime(2024, 1, 5, 14, 30, tzinfo=UTC),  # EST = UTC-5
                                                  dt.datetime(2024, 6, 7, 19, 55, tzinfo=UTC)]  # EDT = UTC-4


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"Information": "Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per day."},
         "'Information' instead of data: Thank you"),
        ({"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute"},
         "'Note' instead of data"),
        ({"Error Message": "Invalid API call. Please retry or visit the documentation"}, "'Error Message'"),
        ({"Meta Data": {}}, "no 'Time Series' object"),
    ],
)
def test_error_bodies_are_errors_not_empty_data(body, message):
    with pytest.raises(MalformedResponseError, match=message) as info:
        parse("av_daily_json", json.dumps(body).encode())
    assert "raw/av/IBM.json" in str(info.value)


def test_truncated_html_missing_field_and_garbage_number():
    with pytest.raises(MalformedResponseError, match="truncated or invalid JSON"):
        parse("av_daily_json", daily_body()[:-30])
    with pytest.raises(MalformedResponseError, match="HTML page"):
        parse("av_daily_json", b"<html><body>502 Bad Gateway</body></html>")
    doc = json.loads(daily_body())
    del doc["Time Series (Daily)"]["2024-06-07"]["4. close"]
    with pytest.raises(MalformedResponseError, match="2024-06-07: missing field"):
        parse("av_daily_json", json.dumps(doc).encode())
    doc = json.loads(daily_body())
    doc["Time Series (Daily)"]["2024-06-06"]["2. high"] = "1b8.44"
    with pytest.raises(MalformedResponseError, match="2024-06-06 high: not a number: '1b8.44'"):
        parse("av_daily_json", json.dumps(doc).encode())
    with pytest.raises(MalformedResponseError, match="missing field.*adjusted close"):
        parse("av_daily_adjusted_json", daily_body())
    doc = json.loads(daily_body())
    doc["Time Series (Daily)"]["2024-06-06"]["5. volume"] = "1e30"  # was an OverflowError traceback
    with pytest.raises(MalformedResponseError, match="2024-06-06 volume: volume out of range: 1e"):
        parse("av_daily_json", json.dumps(doc).encode())


def test_api_key_in_an_error_body_is_redacted():
    body = json.dumps({"Error Message": "bad request https://x/query?function=X&apikey=SECRETKEY123"}).encode()
    with pytest.raises(MalformedResponseError) as info:
        parse("av_daily_json", body)
    assert "SECRETKEY123" not in str(info.value)
