"""Test helpers for the lake/serving/db/query tests: raw files in a tiny CSV format and its normalizer.

The lake's contract with the normalizers is ``normalize_record(record) -> Normalized`` and
``merge_latest(parts)``. These tests must not depend on the provider normalizers (tested on their
own), so raw files here use a minimal format (``format: lake_test_csv``) with a real parser:

    D,<date>,<open>,<high>,<low>,<close>,<adjusted_close|>,<volume>    a daily bar
    A,<date>,<dividend|>,<split_ratio|>                                 a corporate action
    I,<ts ISO>,<open>,<high>,<low>,<close>,<volume>                     an intraday bar
"""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pyarrow as pa
import pytest

from cxq_data.normalize.base import Normalized
from cxq_data.paths import DataLayout
from cxq_data.raw import RawRecord, RawResponse, write_raw
from cxq_data.schema import ACTIONS_SCHEMA, INTRADAY_SCHEMA, PARTITION_SCHEMA

FORMAT = "lake_test_csv"


def _num(text: str) -> float | None:
    return float(text) if text else None


def normalize_test_record(record: RawRecord) -> Normalized:
    if record.manifest.get("format") != FORMAT:
        raise ValueError(f"{record.path}: not a {FORMAT} file")
    fetched = record.fetched_at
    daily, actions, intraday = [], [], []
    for line in record.read_bytes().decode().splitlines():
        f = line.split(",")
        if f[0] == "D":
            daily.append((dt.date.fromisoformat(f[1]), *map(_num, f[2:7]), int(f[7]), fetched))
        elif f[0] == "A":
            actions.append((dt.date.fromisoformat(f[1]), _num(f[2]), _num(f[3]), fetched))
        elif f[0] == "I":
            ts = dt.datetime.fromisoformat(f[1]).astimezone(dt.UTC)
            intraday.append((ts, *map(_num, f[2:6]), int(f[6]), fetched))
        else:
            raise ValueError(f"{record.path}: bad line {line!r}")
    bars = _table(intraday, INTRADAY_SCHEMA) if record.kind.startswith("intraday-") else _table(daily, PARTITION_SCHEMA)
    return Normalized(bars, _table(actions, ACTIONS_SCHEMA))


def merge_test_latest(parts: list[Normalized]) -> Normalized:
    """Later parts win per date (parts come oldest fetch first)."""
    return Normalized(_last_wins([p.bars for p in parts]), _last_wins([p.actions for p in parts]))


def _last_wins(tables: list[pa.Table]) -> pa.Table:
    schema = tables[0].schema
    key = schema.names[0]
    rows: dict = {}
    for t in tables:
        for row in t.to_pylist():
            rows[row[key]] = row
    return pa.Table.from_pylist([rows[k] for k in sorted(rows)], schema=schema)


def _table(rows: list[tuple], schema: pa.Schema) -> pa.Table:
    cols = list(zip(*rows)) if rows else [[] for _ in schema]
    return pa.table([pa.array(list(c), f.type) for c, f in zip(cols, schema)], schema=schema)


@pytest.fixture
def test_normalizer(monkeypatch: pytest.MonkeyPatch) -> None:
    from cxq_data import normalize

    monkeypatch.setattr(normalize, "normalize_record", normalize_test_record)
    monkeypatch.setattr(normalize, "merge_latest", merge_test_latest)


# --------------------------------------------------------------------------------- synthetic data
def trading_days(start: dt.date, end: dt.date) -> list[dt.date]:
    out, d = [], start
    while d <= end:
        if d.weekday() < 5:
            out.append(d)
        d += dt.timedelta(days=1)
    return out


def synthetic_bars(symbol: str, days: list[dt.date], version: int = 0) -> list[str]:
    """Deterministic random-walk bars; ``version`` shifts every close (a restated history)."""
    rng = random.Random(f"{symbol}-{version}")
    price, lines = 50.0 + rng.random() * 100, []
    for d in days:
        price = max(1.0, price * (1 + rng.gauss(0, 0.01)))
        o, c = round(price, 2), round(price * (1 + rng.gauss(0, 0.005)) + version * 0.01, 2)
        h, lo = round(max(o, c) * 1.01, 2), round(min(o, c) * 0.99, 2)
        lines.append(f"D,{d},{o},{h},{lo},{c},{round(c * 0.98, 4)},{rng.randint(1000, 10**7)}")
    return lines


def write_raw_lines(layout: DataLayout, source: str, symbol: str, lines: list[str],
                    fetched_at: dt.datetime, kind: str = "daily") -> RawRecord:
    body = ("\n".join(lines) + "\n").encode()
    resp = RawResponse(source=source, symbol=symbol, body=body, ext="csv", kind=kind,
                       extra={"format": FORMAT}, fetched_at=fetched_at)
    return write_raw(layout, resp)


def ts(day: int, hour: int = 12) -> dt.datetime:
    return dt.datetime(2025, 1, 1, hour, tzinfo=dt.UTC) + dt.timedelta(days=day)


def tree_state(root: Path) -> dict[str, tuple[bytes, int]]:
    """{relative path: (bytes, mtime_ns)} of every non-temp file under ``root``."""
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*")) if p.is_file()}
