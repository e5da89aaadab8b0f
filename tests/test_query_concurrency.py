"""Readers never break: a reader process queries for >= 30 s while process runs rewrite >= 100 partitions
and the serving layer swaps. Every result must equal the old or the new version, with zero errors."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
import time

import pytest
from lake_support import synthetic_bars, test_normalizer, write_raw_lines  # noqa: F401

from cxq_data.db import refresh_serving
from cxq_data.lake import process
from cxq_data.paths import DataLayout

pytestmark = [pytest.mark.usefixtures("test_normalizer"), pytest.mark.slow]

SYMBOLS = ["S0", "S1", "S2", "S3", "S4"]
# One bar a week over 21 years: 5 symbols x 21 years = 105 partitions, rewritten on every version flip.
DAYS = [dt.date(2005, 1, 3) + dt.timedelta(weeks=w) for w in range(21 * 52 + 1)]
READ_SECONDS = 32

_READER = r"""
import json, sys, time
from cxq_data import query
from cxq_data.db import connect
from cxq_data.paths import DataLayout

layout, seconds, out = DataLayout.from_option(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
TOTALS = "SELECT symbol, count(*) AS n, sum(close) AS s FROM daily GROUP BY symbol ORDER BY symbol"
end, results, errors, persistent = time.time() + seconds, [], [], None
while time.time() < end:
    try:
        totals = [[r["symbol"], r["n"], r["s"]] for r in query.sql(layout, TOTALS)]
        results.append({"mode": "fresh", "totals": totals, "latest": None})
        latest = [r["close"] for r in query.latest(layout, "S2", rows=3)]  # one query = one version
        results.append({"mode": "latest", "totals": None, "latest": latest})
        if persistent is None or len(results) % 20 == 0:  # a long-lived connection, renewed now and then
            if persistent is not None:
                persistent.close()
            persistent = connect(layout)
        rows = persistent.execute(TOTALS).fetchall()
        results.append({"mode": "persistent", "totals": [list(r) for r in rows], "latest": None})
    except Exception as exc:  # every failure is recorded: the test requires none
        errors.append(f"{type(exc).__name__}: {exc}")
json.dump({"results": results, "errors": errors}, open(out, "w"))
"""


def _expected(version: int) -> dict:
    totals, latest = [], None
    for sym in SYMBOLS:
        closes = [float(line.split(",")[5]) for line in synthetic_bars(sym, DAYS, version)]
        totals.append((sym, len(closes), sum(closes)))
        if sym == "S2":
            latest = closes[::-1][:3]
    return {"totals": totals, "latest": latest}


def _matches(result: dict, expected: dict) -> bool:
    got = result["totals"]
    if got is None:
        return result["latest"] == expected["latest"]
    if len(got) != len(expected["totals"]):
        return False
    for (sym, n, s), (esym, en, es) in zip(got, expected["totals"]):
        if sym != esym or n != en or not math.isclose(s, es, rel_tol=1e-12, abs_tol=1e-6):
            return False
    return result["latest"] is None or result["latest"] == expected["latest"]


def _write_version(layout: DataLayout, version: int, stamp: dt.datetime) -> None:
    for sym in SYMBOLS:
        write_raw_lines(layout, "yfinance", sym, synthetic_bars(sym, DAYS, version), stamp)


def test_reader_process_sees_only_whole_versions_while_the_lake_is_rewritten(data_dir, tmp_path):
    layout = DataLayout(data_dir)
    stamp = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    _write_version(layout, 0, stamp)
    assert process(layout, "yfinance", progress=False).ok
    refresh_serving(layout)
    out = tmp_path / "reader.json"
    reader = subprocess.Popen([sys.executable, "-c", _READER, str(data_dir), str(READ_SECONDS), str(out)])
    rewritten, swaps, version = [], 0, 0
    try:
        time.sleep(1.0)  # let the reader start querying the first version
        while reader.poll() is None:
            version = 1 - version
            stamp += dt.timedelta(minutes=1)
            _write_version(layout, version, stamp)
            summary = process(layout, "yfinance", progress=False)
            assert summary.ok, summary.rows()
            rewritten.append(sum(r.files_written for r in summary.results))
            result = refresh_serving(layout)
            swaps += result.serving.changed
    finally:
        reader.wait(timeout=120)
    report = json.loads(out.read_text())
    assert report["errors"] == []
    results = report["results"]
    assert len(results) >= 100  # the reader really ran queries throughout
    legal = [_expected(0), _expected(1)]
    bad = [r for r in results if not any(_matches(r, e) for e in legal)]
    assert bad == [], bad[:3]
    seen = {i for r in results for i, e in enumerate(legal) if _matches(r, e)}
    assert seen == {0, 1}  # the reader observed both versions, i.e. swaps happened under it
    # Every run rewrote all 105 partitions (+ the 5 indexes) and swapped the serving manifest.
    assert len(rewritten) >= 2 and all(n >= 105 + 5 for n in rewritten)
    assert swaps == len(rewritten)
