"""merge_latest: per date the latest fetch wins (ties: later part), deterministic; format dispatch."""

from __future__ import annotations

import datetime as dt

import pytest

from cxq_data.errors import RawLayerError
from cxq_data.normalize import Normalized, ParseRequest, merge_latest, normalize_record, parse_body
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse, list_raw, write_raw
from cxq_data.schema import INTRADAY_SCHEMA, PARTITION_SCHEMA

UTC = dt.UTC
T1 = dt.datetime(2024, 6, 1, tzinfo=UTC)
T2 = dt.datetime(2024, 6, 8, tzinfo=UTC)


def csv_part(rows: list[tuple[str, float]], fetched: dt.datetime, actions: str = "") -> Normalized:
    text = "Date,Open,High,Low,Close,Dividends\n" + "".join(
        f"{d},{c},{c},{c},{c},{0.5 if d == actions else 0}\n" for d, c in rows)
    return parse_body("generic_csv", ParseRequest(text.encode(), "x", fetched))


def closes(part: Normalized) -> list[tuple[dt.date, float, dt.datetime]]:
    return [(r["date"], r["close"], r["ingested_at"]) for r in part.bars.to_pylist()]


def test_latest_fetch_wins_per_date_and_old_dates_survive():
    old = csv_part([("2024-06-03", 1.0), ("2024-06-04", 2.0), ("2024-06-05", 3.0)], T1, actions="2024-06-04")
    new = csv_part([("2024-06-05", 30.0), ("2024-06-06", 40.0)], T2)
    merged = merge_latest([new, old])  # order of the list does not matter when fetch times differ
    assert merged.bars.schema == PARTITION_SCHEMA
    assert closes(merged) == [
        (dt.date(2024, 6, 3), 1.0, T1), (dt.date(2024, 6, 4), 2.0, T1),
        (dt.date(2024, 6, 5), 30.0, T2), (dt.date(2024, 6, 6), 40.0, T2)]
    assert [(a["date"], a["dividend"]) for a in merged.actions.to_pylist()] == [(dt.date(2024, 6, 4), 0.5)]


def test_tie_on_fetch_time_goes_to_the_later_part_and_is_deterministic():
    a = csv_part([("2024-06-05", 1.0)], T1)
    b = csv_part([("2024-06-05", 2.0)], T1)
    assert closes(merge_latest([a, b]))[0][1] == 2.0
    assert closes(merge_latest([b, a]))[0][1] == 1.0
    first, second = merge_latest([a, b]), merge_latest([a, b])
    assert first.bars.equals(second.bars) and first.actions.equals(second.actions)


def test_empty_and_intraday_merges():
    assert merge_latest([]).bars.schema == PARTITION_SCHEMA and merge_latest([]).bars.num_rows == 0
    empty = csv_part([], T1)
    assert merge_latest([empty, empty]).bars.num_rows == 0
    body = ('{"Meta Data":{"6. Time Zone":"US/Eastern"},"Time Series (5min)":{"2024-06-07 10:00:00":'
            '{"1. open":"1","2. high":"1","3. low":"1","4. close":"%s","5. volume":"1"}}}')
    one = parse_body("av_intraday_json", ParseRequest((body % "1").encode(), "x", T1, intraday=True))
    two = parse_body("av_intraday_json", ParseRequest((body % "2").encode(), "x", T2, intraday=True))
    merged = merge_latest([two, one])
    assert merged.bars.schema == INTRADAY_SCHEMA
    assert merged.bars.column("close").to_pylist() == [2.0]
    with pytest.raises(ValueError, match="share one schema"):
        merge_latest([one, empty])


def test_merge_of_raw_files_in_list_raw_order(tmp_path):
    layout = DataLayout(tmp_path)
    for fetched, close in ((T1, 1.0), (T2, 2.0)):
        body = f"Date,Open,High,Low,Close\n2024-06-05,{close},{close},{close},{close}\n".encode()
        write_raw(layout, RawResponse("mine", "ABC", body, "csv", fetched_at=fetched, extra={"format": "generic_csv"}))
    merged = merge_latest([normalize_record(r) for r in list_raw(layout, "mine", "ABC")])
    assert closes(merged) == [(dt.date(2024, 6, 5), 2.0, T2)]


def test_unknown_format_in_manifest_is_an_error(tmp_path):
    layout = DataLayout(tmp_path)
    record = write_raw(layout, RawResponse("mine", "ABC", b"x", "csv", extra={"format": "parquet_v9"}))
    with pytest.raises(RawLayerError, match="unknown raw format 'parquet_v9'"):
        normalize_record(record)


def test_tampered_raw_file_fails_its_hash(tmp_path):
    layout = DataLayout(tmp_path)
    record = write_raw(layout, RawResponse("mine", "ABC", b"Date,Open,High,Low,Close\n2024-06-05,1,1,1,1\n", "csv",
                                           extra={"format": "generic_csv"}))
    record.path.chmod(0o644)
    record.path.write_bytes(b"Date,Open,High,Low,Close\n2024-06-05,9,9,9,9\n")
    with pytest.raises(RawLayerError, match="sha256"):
        normalize_record(record)


@pytest.mark.parametrize("new_rows", [[("2024-06-06", 40.0)], [("2024-06-05", 30.0), ("2024-06-06", 40.0)],
                                      [("2024-06-01", 10.0)]])
def test_append_shortcut_gives_the_general_result_and_bytes(new_rows, monkeypatch: pytest.MonkeyPatch):
    """Keys already strictly increasing (a new day after a year) skip the sort; same table, same Parquet."""
    from cxq_data.lake_io import partition_bytes
    from cxq_data.normalize import base

    old = csv_part([("2024-06-03", 1.0), ("2024-06-04", 2.0), ("2024-06-05", 3.0)], T1)
    parts = [old, csv_part(new_rows, T2)]
    quick = merge_latest(parts)
    with monkeypatch.context() as m:
        m.setattr(base, "strictly_increasing", lambda keys: False)
        general = merge_latest(parts)
    assert quick.bars.equals(general.bars) and quick.actions.equals(general.actions)
    assert partition_bytes(quick.bars) == partition_bytes(general.bars)
    dates = [r["date"] for r in quick.bars.to_pylist()]
    assert dates == sorted(set(dates))
