"""Generic CSV -> canonical bars/actions: header variants, dates with offsets, row order, errors."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cxq_data.errors import DataFormatError
from cxq_data.normalize import ParseRequest, parse_body
from cxq_data.schema import ACTIONS_SCHEMA, PARTITION_SCHEMA

FETCHED = dt.datetime(2024, 6, 8, 1, 0, tzinfo=dt.UTC)
DEFECTS = Path(__file__).parent / "data" / "yfinance_defects"


def parse(text: str, name: str = "user/prices.csv"):
    out = parse_body("generic_csv", ParseRequest(text.encode(), name, FETCHED))
    assert out.bars.schema == PARTITION_SCHEMA and out.actions.schema == ACTIONS_SCHEMA
    return out.bars.to_pylist(), out.actions.to_pylist()


@pytest.mark.parametrize(
    "header",
    [
        "Date,Open,High,Low,Close,Adj Close,Volume",
        "date,open,high,low,close,adj_close,volume",
        "Volume,Adj. Close,CLOSE,low,High,open,DATE",
        "Date,Open,High,Low,Close,Adjusted Close,Volume,Ignored Column",
    ],
)
def test_header_order_case_and_aliases(header):
    values = {"date": "2024-06-06", "open": "1.5", "high": "2.5", "low": "1.0", "close": "2.0", "adjclose": "1.9",
              "adjustedclose": "1.9", "volume": "1200", "ignoredcolumn": "zzz"}
    keys = ["".join(ch for ch in h.lower() if ch.isalnum()) for h in header.split(",")]
    bars, actions = parse(header + "\n" + ",".join(values[k] for k in keys) + "\n")
    assert bars == [{"date": dt.date(2024, 6, 6), "open": 1.5, "high": 2.5, "low": 1.0, "close": 2.0,
                     "adjusted_close": 1.9, "volume": 1200, "ingested_at": FETCHED}]
    assert actions == []


def test_utc_offset_dates_use_the_local_date_and_rows_any_order():
    text = ("Date,Open,High,Low,Close,Volume\n"
            "2022-06-06 00:00:00+01:00,3,3,3,3,30\n"
            "2022-05-30 00:00:00+01:00,1,1,1,1,10\n"
            "2022-06-01T00:00:00-04:00,2,2,2,2,20\n")
    bars, _ = parse(text)
    assert [(b["date"], b["close"]) for b in bars] == [
        (dt.date(2022, 5, 30), 1.0), (dt.date(2022, 6, 1), 2.0), (dt.date(2022, 6, 6), 3.0)]
    assert all(b["adjusted_close"] is None for b in bars)


def test_optional_columns_absent_and_empty_cells():
    bars, actions = parse("Date,Open,High,Low,Close\n20240606,1,2,0.5,1.5\n2024-06-07,,,,\n")
    assert bars == [{"date": dt.date(2024, 6, 6), "open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5,
                     "adjusted_close": None, "volume": None, "ingested_at": FETCHED}]  # empty row: no bar
    assert actions == []


def test_dividends_and_splits_become_actions():
    text = ("Date,Open,High,Low,Close,Volume,Dividends,Stock Splits\n"
            "2024-06-07,10,10,10,10,5,0.0,0.0\n"
            "2024-06-06,10,10,10,10,5,0.25,0\n"
            "2024-06-05,10,10,10,10,5,0,2.0\n"
            "2024-06-04,10,10,10,10,5,0,1:10\n")
    _, actions = parse(text)
    assert [(a["date"], a["dividend"], a["split_ratio"]) for a in actions] == [
        (dt.date(2024, 6, 4), None, pytest.approx(0.1)),
        (dt.date(2024, 6, 5), None, 2.0),
        (dt.date(2024, 6, 6), 0.25, None),
    ]


def test_duplicate_dates_keep_last_row_without_failing():
    text = "Date,Open,High,Low,Close\n2024-06-06,1,1,1,1\n2024-06-07,2,2,2,2\n2024-06-06,3,3,3,3\n"
    bars, _ = parse(text)
    assert [(b["date"], b["close"]) for b in bars] == [(dt.date(2024, 6, 6), 3.0), (dt.date(2024, 6, 7), 2.0)]
    out = parse_body("generic_csv", ParseRequest(text.encode(), "x", FETCHED, keep_duplicates=True))
    assert out.bars.column("close").to_pylist() == [1.0, 3.0, 2.0]


def test_yfinance_export_newest_first_with_split():
    data = (DEFECTS / "MOB-ST-1d-bad-stock-split-fixed.csv").read_bytes()
    out = parse_body("generic_csv", ParseRequest(data, "MOB.csv", FETCHED))
    dates = out.bars.column("date").to_pylist()
    assert dates == sorted(dates) and len(dates) == len(set(dates)) == 16
    assert [(a["date"], a["split_ratio"]) for a in out.actions.to_pylist()] == [(dt.date(2023, 5, 24), 0.1)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Date,Open,High,Low,Volume\n2024-06-06,1,2,0.5,7\n", "line 1: missing column.*close"),
        ("Date,Open,High,Low,Close\n2024-06-06,1,2,0.5,1..5\n", "line 2 column Close: not a number: '1..5'"),
        ("Date,Open,High,Low,Close\n06/06/2024,1,2,0.5,1.5\n", "line 2 column Date: not a date"),
        ("Date,Open,High,Low,Close\n2024-06-06,1,2,0.5\n", "line 2: 4 fields, header has 5"),
        ("Date,Open,High,Low,Close,Close\n2024-06-06,1,2,0.5,1.5,1.5\n", "both mean close"),
        ("Date,Open,High,Low,Close,Stock Splits\n2024-06-06,1,2,0.5,1.5,-2\n", "negative split ratio"),
        ("<html><head><title>Oops</title></head><body></body></html>", "HTML page"),
        ("", "empty body"),
        ("Date,Open,High,Low,Close,Volume\n2024-06-06,1,2,0.5,1.5,1e99\n", "line 2 column Volume: volume out of range"),
        ("Date,Open,High,Low,Close,Volume\n2024-06-06,1,2,0.5,1.5,9223372036854775808\n", "out of range"),
    ],
)
def test_bad_files_raise_errors_naming_file_and_place(text, message):
    with pytest.raises(DataFormatError, match=message) as info:
        parse(text)
    assert "user/prices.csv" in str(info.value)


def test_binary_file_is_refused():
    with pytest.raises(DataFormatError, match="not UTF-8"):
        parse_body("generic_csv", ParseRequest(b"\xff\xfe\x00\x01garbage", "x.csv", FETCHED))
