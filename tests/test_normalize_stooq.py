"""Stooq CSV and bulk ASCII -> canonical bars (levels as published, no adjusted close), errors."""

from __future__ import annotations

import datetime as dt

import pytest

from cxq_data.errors import MalformedResponseError
from cxq_data.normalize import ParseRequest, parse_body
from cxq_data.schema import PARTITION_SCHEMA

FETCHED = dt.datetime(2024, 6, 8, 1, 0, tzinfo=dt.UTC)
BULK_HEADER = "<TICKER>,<PER>,<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<VOL>,<OPENINT>\n"

# AAPL across its 4:1 split of 2020-08-31: Stooq publishes split-adjusted levels on both sides.
STOOQ_CSV = (
    "Date,Open,High,Low,Close,Volume\n"
    "2020-08-28,126.0125,126.4425,124.5775,124.8075,187630000\n"
    "2020-08-31,127.58,131.0,126.0,129.04,225702700\n"
)


def parse(fmt: str, text: str, name: str = "raw/stooq/AAPL.csv") -> list[dict]:
    out = parse_body(fmt, ParseRequest(text.encode(), name, FETCHED))
    assert out.bars.schema == PARTITION_SCHEMA
    assert out.actions.num_rows == 0  # Stooq files carry no corporate actions
    return out.bars.to_pylist()


def test_csv_levels_are_stored_as_published_across_a_split():
    bars = parse("stooq_csv", STOOQ_CSV)
    assert [(b["date"], b["close"], b["volume"]) for b in bars] == [
        (dt.date(2020, 8, 28), 124.8075, 187_630_000), (dt.date(2020, 8, 31), 129.04, 225_702_700)]
    assert all(b["adjusted_close"] is None and b["ingested_at"] == FETCHED for b in bars)


def test_csv_without_volume_and_polish_header():
    bars = parse("stooq_csv", "Date,Open,High,Low,Close\n2024-06-06,5300.1,5320.5,5290.0,5352.96\n")
    assert bars[0]["close"] == 5352.96 and bars[0]["volume"] is None
    bars = parse("stooq_csv", "Data,Otwarcie,Najwyzszy,Najnizszy,Zamkniecie,Wolumen\n2024-06-06,1,2,0.5,1.5,7\n")
    assert bars[0]["volume"] == 7


def test_bulk_ascii_dates_sorting_and_dedupe():
    text = BULK_HEADER + (
        "AAPL.US,D,20200831,000000,127.58,131.0,126.0,129.04,225702700,0\n"
        "AAPL.US,D,20200828,000000,126.0125,126.4425,124.5775,124.8075,187630000.4,0\n"
        "AAPL.US,D,20200831,000000,127.58,131.0,126.0,129.05,225702700,0\n"
    )
    bars = parse("stooq_bulk_txt", text)
    assert [(b["date"], b["close"]) for b in bars] == [(dt.date(2020, 8, 28), 124.8075), (dt.date(2020, 8, 31), 129.05)]
    assert bars[0]["volume"] == 187_630_000


def test_header_only_is_empty_not_an_error():
    assert parse("stooq_bulk_txt", BULK_HEADER) == []


@pytest.mark.parametrize(
    ("fmt", "text", "message"),
    [
        ("stooq_csv", "No data", "Stooq answered 'No data'"),
        ("stooq_csv", "Exceeded the daily hits limit!", "Exceeded the daily hits limit"),
        ("stooq_csv", "<!DOCTYPE html><html><head><title>Stooq</title></head><body>get your apikey</body></html>",
         "HTML page"),
        ("stooq_csv", "", "empty body"),
        ("stooq_csv", "Date,Open,High,Close,Volume\n2024-06-06,1,2,1.5,7\n", "line 1: expected header"),
        ("stooq_csv", STOOQ_CSV + "2020-09-01,1,2,abc,1.5,7\n", "line 4 column Low: not a number: 'abc'"),
        ("stooq_csv", STOOQ_CSV + "2020-09-01,1,2,0.5\n", "line 4: 4 fields, expected 6"),
        ("stooq_csv", STOOQ_CSV + "2020-13-01,1,2,0.5,1.5,7\n", "line 4 column Date: not a date"),
        ("stooq_csv", STOOQ_CSV + "2020-09-01,1,2,0.5,1.5,inf\n", "volume out of range"),
        ("stooq_bulk_txt", BULK_HEADER + "AAPL.US,D,2020083,000000,1,2,0.5,1.5,7,0\n", "line 2 column <DATE>"),
        ("stooq_bulk_txt", BULK_HEADER + "AAPL.US,D,20200831,000000,1,2,0.5,x1.5,7,0\n",
         "line 2 column <CLOSE>: not a number"),
        ("stooq_bulk_txt", BULK_HEADER + "AAPL.US,D,20200831,000000,1,2,0.5,1.5,7,0\n"
                                         "MSFT.US,D,20200831,000000,1,2,0.5,1.5,7,0\n", "one ticker per file"),
        ("stooq_bulk_txt", BULK_HEADER + "AAPL.US,W,20200831,000000,1,2,0.5,1.5,7,0\n", "not daily data"),
    ],
)
def test_bad_bodies_raise_errors_naming_file_and_place(fmt, text, message):
    with pytest.raises(MalformedResponseError, match=message) as info:
        parse(fmt, text)
    assert "raw/stooq/AAPL.csv" in str(info.value)


ROW = "AAPL.US,D,20200831,000000,127.58,131.0,126.0,129.04,225702700,0"
SMALL_BODIES = [
    BULK_HEADER,  # no rows
    BULK_HEADER + ROW + "\n",  # Stooq's daily update member
    BULK_HEADER + ROW,  # no final newline
    BULK_HEADER.replace("\n", "\r\n") + ROW + "\r\n",  # CRLF
    BULK_HEADER + ROW + "\n\n",  # empty line
    BULK_HEADER + "AAPL.US,D,20200831,0,1,2,0.5,1.5,7.5,0\nAAPL.US,D,20200828,0,1,2,0.5,1.25,8.5,0\n"
    + "AAPL.US,D,20200831,0,1,2,0.5,1.75,9.5,0\n",  # unsorted, a duplicate date, volumes rounded half to even
    BULK_HEADER + "AAPL.US,D,20200831,0,1e2,2E+2,-0.5,1.0e-3,2.5,0\n",  # exponents, a negative
    BULK_HEADER + "AAPL.US,D,20200831,0,0.1,0.2,0.30000000000000004,123456789.123456789,9007199254740993,0\n",
]
# Anything unusual goes through Arrow (which then decides: a value, or an error naming the place).
ODD_BODIES = [
    BULK_HEADER + 'AAPL.US,D,20200831,0,"1",2,0.5,1.5,7,0\n',  # quoted
    BULK_HEADER + "AAPL.US,D,20200831,0, 1,2,0.5,1.5,7,0\n",  # a blank before a number
    BULK_HEADER + "AAPL.US,D,20200831,0,NaN,2,0.5,1.5,7,0\n",  # Arrow reads NaN as null
    BULK_HEADER + "AAPL.US,D,20200831,0,,2,0.5,1.5,7,0\n",  # empty cell
    BULK_HEADER + "AAPL.US,D,20200831,0,1,2,0.5,1.5,1e400,0\n",  # volume out of range
    BULK_HEADER + "AAPL.US,D,20200230,0,1,2,0.5,1.5,7,0\n",  # no such date
    BULK_HEADER + "AAPL.US,D,20200831,0,1,2,0.5,1.5,7\n",  # a field short
    BULK_HEADER + ROW + "\nMSFT.US,D,20200831,0,1,2,0.5,1.5,7,0\n",  # two tickers
    BULK_HEADER + "AAPL.US,W,20200831,0,1,2,0.5,1.5,7,0\n",  # weekly
    "\ufeff" + BULK_HEADER + ROW + "\n",  # byte-order mark
    BULK_HEADER + ROW + "\n   \n",  # a line of blanks
]


def _both_paths(monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[object, object]:
    """(fast path result or error, Arrow path result or error) for one bulk member."""
    from cxq_data.normalize import stooq

    def run() -> object:
        try:
            bars = parse_body("stooq_bulk_txt", ParseRequest(text.encode(), "raw/stooq/AAPL/x.txt", FETCHED)).bars
            return bars
        except MalformedResponseError as exc:
            return f"error: {exc}"

    fast = run()
    with monkeypatch.context() as m:
        m.setattr(stooq, "_small_bulk", lambda req: None)
        arrow = run()
    return fast, arrow


@pytest.mark.parametrize("text", SMALL_BODIES)
def test_small_bulk_members_take_the_fast_path_and_equal_arrow(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxq_data.normalize import stooq

    assert stooq._small_bulk(ParseRequest(text.encode(), "x", FETCHED)) is not None  # the fast path took it
    fast, arrow = _both_paths(monkeypatch, text)
    assert fast.schema == arrow.schema == PARTITION_SCHEMA
    assert fast.equals(arrow) and fast.to_pylist() == arrow.to_pylist()


@pytest.mark.parametrize("text", ODD_BODIES)
def test_odd_small_bulk_members_are_left_to_arrow(text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from cxq_data.normalize import stooq

    assert stooq._small_bulk(ParseRequest(text.encode(), "x", FETCHED)) is None
    fast, arrow = _both_paths(monkeypatch, text)
    assert fast == arrow if isinstance(arrow, str) else fast.equals(arrow)


def test_fast_path_table_gives_the_same_parquet_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxq_data.lake_io import partition_bytes

    fast, arrow = _both_paths(monkeypatch, SMALL_BODIES[5])
    assert partition_bytes(fast) == partition_bytes(arrow)


def _long_member(days: list[dt.date], tail: str = "") -> str:
    rows = "".join(f"AAPL.US,D,{d:%Y%m%d},000000,1,2,0.5,1.5,7,0\n" for d in days)
    return BULK_HEADER + rows + tail  # > 4 KB: the Arrow path with the integer YYYYMMDD conversion


def test_long_member_dates_convert_exactly_across_leap_years_and_centuries():
    days = [dt.date(1899, 12, 25) + dt.timedelta(days=n) for n in range(0, 46000, 7)]
    days += [dt.date(2000, 2, 29), dt.date(2024, 2, 29), dt.date(2100, 3, 1)]
    days = sorted(set(days))
    assert [b["date"] for b in parse("stooq_bulk_txt", _long_member(days))] == days


@pytest.mark.parametrize("bad", ["20230229", "21000229", "20230431", "20231301", "20230100", "2023-1-1"])
def test_long_member_with_an_impossible_date_names_the_line(bad):
    days = [dt.date(2020, 1, 1) + dt.timedelta(days=n) for n in range(200)]
    text = _long_member(days, f"AAPL.US,D,{bad},000000,1,2,0.5,1.5,7,0\n")
    with pytest.raises(MalformedResponseError, match=f"line {len(days) + 2} column <DATE>: not a date YYYYMMDD"):
        parse("stooq_bulk_txt", text)
