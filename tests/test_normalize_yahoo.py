"""Yahoo chart v8 JSON -> canonical bars/actions: as-traded prices, exchange-local dates, errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cxq_data.errors import MalformedResponseError
from cxq_data.normalize import ParseRequest, normalize_record, parse_body
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse, write_raw
from cxq_data.schema import ACTIONS_SCHEMA, INTRADAY_SCHEMA, PARTITION_SCHEMA

FETCHED = dt.datetime(2020, 9, 5, 12, 0, tzinfo=dt.UTC)


def epoch(year: int, month: int, day: int, hour: int = 13, minute: int = 30) -> int:
    return int(dt.datetime(year, month, day, hour, minute, tzinfo=dt.UTC).timestamp())


def chart_body(zone: str, timestamps: list[int], close: list[float | None], *, open_=None, high=None, low=None,
               volume=None, adjclose=None, splits=None, dividends=None, granularity="1d") -> bytes:
    n = len(timestamps)
    quote = {"open": open_ or close, "high": high or close, "low": low or close, "close": close,
             "volume": volume or [1000] * n}
    result = {"meta": {"currency": "USD", "symbol": "X", "exchangeTimezoneName": zone, "dataGranularity": granularity},
              "timestamp": timestamps, "indicators": {"quote": [quote]}}
    if adjclose is not None:
        result["indicators"]["adjclose"] = [{"adjclose": adjclose}]
    events = {}
    if splits:
        events["splits"] = {str(t): {"date": t, "numerator": num, "denominator": den, "splitRatio": f"{num}:{den}"}
                            for t, num, den in splits}
    if dividends:
        events["dividends"] = {str(t): {"amount": amount, "date": t} for t, amount in dividends}
    if events:
        result["events"] = events
    return json.dumps({"chart": {"result": [result], "error": None}}).encode()


def parse(body: bytes, **kw) -> tuple[list[dict], list[dict]]:
    out = parse_body("yahoo_chart_json", ParseRequest(body, "raw/yf/X.json", FETCHED, **kw))
    return out.bars.to_pylist(), out.actions.to_pylist()


def aapl_2020_body() -> bytes:
    """AAPL around the 4:1 split of 2020-08-31 and the dividend of 2020-08-07, as Yahoo serves it
    after the split: prices, volume and the dividend amount are split-adjusted."""
    ts = [epoch(2020, 8, 7), epoch(2020, 8, 28), epoch(2020, 8, 31)]
    return chart_body(
        "America/New_York", ts,
        close=[111.1125, 124.8075, 129.04],
        open_=[113.205, 126.0125, 127.58],
        high=[113.675, 126.4425, 131.0],
        low=[110.2925, 124.5775, 126.0],
        volume=[198045600, 187630000, 225702700],
        adjclose=[109.5, 123.0, 127.2],
        splits=[(epoch(2020, 8, 31), 4.0, 1.0)],
        dividends=[(epoch(2020, 8, 7), 0.205)],
    )


def test_split_is_undone_before_the_split_date_and_kept_after():
    bars, _ = parse(aapl_2020_body())
    by_date = {b["date"]: b for b in bars}
    before = by_date[dt.date(2020, 8, 28)]
    assert before["close"] == pytest.approx(499.23)  # 124.8075 * 4, as traded that day
    assert before["open"] == pytest.approx(504.05)
    assert before["high"] == pytest.approx(505.77)
    assert before["low"] == pytest.approx(498.31)
    assert before["volume"] == 46_907_500  # 187,630,000 / 4
    assert before["adjusted_close"] == pytest.approx(123.0)  # adjclose stays as Yahoo gives it
    after = by_date[dt.date(2020, 8, 31)]
    assert after["close"] == pytest.approx(129.04)
    assert after["volume"] == 225_702_700


def test_dividend_is_converted_to_as_traded_amount_and_split_recorded():
    _, actions = parse(aapl_2020_body())
    assert [(a["date"], a["dividend"], a["split_ratio"]) for a in actions] == [
        (dt.date(2020, 8, 7), pytest.approx(0.82), None),  # 0.205 split-adjusted * 4
        (dt.date(2020, 8, 31), None, 4.0),
    ]
    assert all(a["ingested_at"] == FETCHED for a in actions)


def test_reverse_split_ratio_and_factor():
    ts = [epoch(2024, 3, 1), epoch(2024, 3, 4)]
    body = chart_body("America/New_York", ts, close=[20.0, 21.0], volume=[500, 600],
                      splits=[(epoch(2024, 3, 4), 1.0, 10.0)])
    bars, actions = parse(body)
    assert bars[0]["close"] == pytest.approx(2.0)  # 1-for-10: before it traded at a tenth
    assert bars[0]["volume"] == 5000
    assert actions[0]["split_ratio"] == pytest.approx(0.1)


def test_trading_date_uses_exchange_time_zone_not_utc():
    # ASX opens 10:00 AEDT = 23:00 UTC the previous calendar day.
    monday_open = int(dt.datetime(2024, 1, 7, 23, 0, tzinfo=dt.UTC).timestamp())
    tuesday_open = monday_open + 86_400
    bars, _ = parse(chart_body("Australia/Sydney", [monday_open, tuesday_open], close=[7.1, 7.2]))
    assert [b["date"] for b in bars] == [dt.date(2024, 1, 8), dt.date(2024, 1, 9)]


def test_schema_sorting_null_rows_and_ingested_at():
    ts = [epoch(2024, 6, 7), epoch(2024, 6, 5), epoch(2024, 6, 6)]
    body = chart_body("America/New_York", ts, close=[3.0, 1.0, None], open_=[3.0, 1.0, None],
                      high=[3.0, 1.0, None], low=[3.0, 1.0, None], volume=[3, 1, None])
    out = parse_body("yahoo_chart_json", ParseRequest(body, "x", FETCHED))
    assert out.bars.schema == PARTITION_SCHEMA
    assert out.actions.schema == ACTIONS_SCHEMA
    rows = out.bars.to_pylist()
    assert [r["date"] for r in rows] == [dt.date(2024, 6, 5), dt.date(2024, 6, 7)]  # null row dropped, sorted
    assert {r["ingested_at"] for r in rows} == {FETCHED}
    assert rows[0]["adjusted_close"] is None


def test_two_rows_for_one_date_keep_the_later_unless_asked():
    ts = [epoch(2024, 6, 6), epoch(2024, 6, 6, 19, 0)]  # live bar appended as a separate row
    body = chart_body("America/New_York", ts, close=[10.0, 11.0])
    bars, _ = parse(body)
    assert [(b["date"], b["close"]) for b in bars] == [(dt.date(2024, 6, 6), 11.0)]
    dup, _ = parse(body, keep_duplicates=True)
    assert [b["close"] for b in dup] == [10.0, 11.0]


def test_intraday_body_gives_utc_timestamps():
    ts = [epoch(2024, 6, 7, 13, 30), epoch(2024, 6, 7, 13, 35)]
    body = chart_body("America/New_York", ts, close=[1.0, 2.0], granularity="5m")
    out = parse_body("yahoo_chart_json", ParseRequest(body, "x", FETCHED, intraday=True))
    assert out.bars.schema == INTRADAY_SCHEMA
    assert [r["ts"] for r in out.bars.to_pylist()] == [
        dt.datetime(2024, 6, 7, 13, 30, tzinfo=dt.UTC), dt.datetime(2024, 6, 7, 13, 35, tzinfo=dt.UTC)]


def test_normalize_record_reads_raw_file_and_manifest(tmp_path):
    layout = DataLayout(tmp_path)
    record = write_raw(layout, RawResponse("yfinance", "AAPL", aapl_2020_body(), "json", fetched_at=FETCHED,
                                           extra={"format": "yahoo_chart_json"}))
    out = normalize_record(record)
    assert out.bars.num_rows == 3
    assert out.bars.column("ingested_at").to_pylist() == [FETCHED] * 3


def test_intraday_kind_in_manifest_selects_intraday_schema(tmp_path):
    layout = DataLayout(tmp_path)
    body = chart_body("America/New_York", [epoch(2024, 6, 7, 14, 0)], close=[5.0], granularity="5m")
    record = write_raw(layout, RawResponse("yfinance", "AAPL", body, "json", kind="intraday-5m", fetched_at=FETCHED,
                                           extra={"format": "yahoo_chart_json"}))
    assert normalize_record(record).bars.schema == INTRADAY_SCHEMA


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (aapl_2020_body()[:150], "truncated or invalid JSON"),
        (b"<!DOCTYPE html><html><head><title>Yahoo will be right back</title></head></html>", "HTML page"),
        (b'{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}',
         "Not Found"),
        (b'{"finance":{"result":null,"error":{"code":"Unauthorized","description":"Invalid Crumb"}}}', "Invalid Crumb"),
        (b"Too Many Requests", "invalid JSON"),
        (b"", "empty body"),
    ],
)
def test_broken_bodies_raise_clear_errors(body, message):
    with pytest.raises(MalformedResponseError, match=message) as info:
        parse(body)
    assert "raw/yf/X.json" in str(info.value)


def test_missing_column_and_garbage_number():
    doc = json.loads(aapl_2020_body())
    del doc["chart"]["result"][0]["indicators"]["quote"][0]["close"]
    with pytest.raises(MalformedResponseError, match=r"missing column indicators.quote\[0\].close"):
        parse(json.dumps(doc).encode())
    doc = json.loads(aapl_2020_body())
    doc["chart"]["result"][0]["indicators"]["quote"][0]["high"][1] = "12x"
    with pytest.raises(MalformedResponseError, match=r"row 1 .* high: not a number: '12x'"):
        parse(json.dumps(doc).encode())
    doc = json.loads(aapl_2020_body())
    doc["chart"]["result"][0]["indicators"]["quote"][0]["low"].pop()
    with pytest.raises(MalformedResponseError, match="low has 2 values for 3 timestamps"):
        parse(json.dumps(doc).encode())
    doc = json.loads(aapl_2020_body())
    doc["chart"]["result"][0]["indicators"]["quote"][0]["volume"][0] = 1e30
    with pytest.raises(MalformedResponseError, match=r"row 0 .* volume: volume out of range"):
        parse(json.dumps(doc).encode())


def test_missing_exchange_time_zone_is_an_error():
    doc = json.loads(aapl_2020_body())
    del doc["chart"]["result"][0]["meta"]["exchangeTimezoneName"]
    with pytest.raises(MalformedResponseError, match="exchangeTimezoneName"):
        parse(json.dumps(doc).encode())
