"""run_ingest, the lazy registry, the Protocol and the cross-process rate limit."""

from __future__ import annotations

import hashlib
import itertools
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from ingest_support import *
from ingest_support import AV_KEY, STOOQ_KEY, all_bytes_under, with_

from cxq_data.errors import InvalidSourceError
from cxq_data.ingest.base import BaseIngestor
from cxq_data.ingest.registry import INGESTORS, get_ingestor
from cxq_data.ingest.runner import Outcome, run_ingest
from cxq_data.raw import MANIFEST_SUFFIX, list_raw
from cxq_data.simulator import Fault
from cxq_data.sources import Source

SRC = str(Path(__file__).resolve().parents[1] / "src")


@pytest.mark.parametrize("source", ["yf", "yfinance", "av", "alphavantage", "stooq"])
def test_every_ingestor_satisfies_the_protocol(settings, layout, source):
    ingestor = get_ingestor(source, settings, layout)
    assert isinstance(ingestor, BaseIngestor)
    assert BaseIngestor not in type(ingestor).__mro__  # structural, no inheritance
    assert ingestor.max_concurrency >= 1


def test_unknown_source_is_refused(settings, layout):
    with pytest.raises(InvalidSourceError, match="nope"):
        get_ingestor("nope", settings, layout)


def test_registry_and_package_import_do_not_import_yfinance():
    code = (
        "import sys, cxq_data, cxq_data.ingest.registry, cxq_data.ingest.runner, cxq_data.cli.ingest_fetch; "
        "print(sorted(m for m in ('yfinance', 'pandas') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert set(INGESTORS) == set(Source)  # every built-in provider has an ingestor


def test_raw_files_manifests_hashes_and_no_secret(sim, settings, layout):
    summary = run_ingest(layout, "av", ["AAPL", "MSFT"], settings=settings, progress=False)
    assert summary.ok and [o.status for o in summary.outcomes] == [Outcome.FETCHED] * 2
    summary = run_ingest(layout, "stooq", ["AAPL"], settings=settings, progress=False)
    assert summary.ok
    for source, symbol in (("alphavantage", "AAPL"), ("alphavantage", "MSFT"), ("stooq", "AAPL")):
        [record] = list_raw(layout, source, symbol)
        assert hashlib.sha256(record.path.read_bytes()).hexdigest() == record.manifest["sha256"]
        assert record.manifest["request"]["params"]["apikey"] == "***"
        assert record.manifest["format"] in ("av_daily_json", "stooq_csv")
    everything = all_bytes_under(layout.root)
    assert AV_KEY.encode() not in everything and STOOQ_KEY.encode() not in everything


def test_refetch_adds_a_new_file_and_overwrites_nothing(sim, settings, layout):
    run_ingest(layout, "yf", ["AAPL"], settings=settings, progress=False)
    before = {p: p.read_bytes() for p in layout.raw.rglob("*") if p.is_file()}
    second = run_ingest(layout, "yf", ["AAPL"], settings=settings, progress=False)
    after = {p: p.read_bytes() for p in layout.raw.rglob("*") if p.is_file()}
    assert all(after[p] == data for p, data in before.items())  # nothing changed or lost
    assert len(list_raw(layout, "yfinance", "AAPL")) == 2
    assert len(after) == len(before) + 2 and second.outcomes[0].files[0] not in {str(p) for p in before}


@pytest.mark.parametrize(("source", "body", "problem"), [
    ("stooq", "Date,Open,High,Low,Close,Volume\n2024-06-03,abc,2,0.5,1.5,100\n", "not a number: 'abc'"),
    ("av", json.dumps({"Meta Data": {"2. Symbol": "MSFT", "5. Time Zone": "US/Eastern"},
                       "Time Series (Daily)": {"2024-13-45": {"1. open": "1", "2. high": "2", "3. low": "0.5",
                                                              "4. close": "1.5", "5. volume": "10"}}}), "2024-13-45"),
])
def test_a_body_processing_cannot_read_is_an_error_and_not_stored(sim, settings, layout, source, body, problem):
    """Once stored, such a body failed its symbol on every later `process run`, even after a good fetch."""
    sim.script(source, "MSFT", [Fault.body(body, content_type="application/json" if source == "av" else "text/csv")])
    summary = run_ingest(layout, source, ["AAPL", "MSFT"], settings=settings, progress=False)
    assert [o.status for o in summary.outcomes] == [Outcome.FETCHED, Outcome.FAILED] and not summary.ok
    reason = summary.outcomes[1].reason
    assert problem in reason and "MSFT" in reason
    name = {"stooq": "stooq", "av": "alphavantage"}[source]
    assert list_raw(layout, name, "MSFT") == [] and len(list_raw(layout, name, "AAPL")) == 1
    again = run_ingest(layout, source, ["MSFT"], settings=settings, progress=False)  # the provider recovered
    assert again.ok and len(list_raw(layout, name, "MSFT")) == 1


def test_one_failure_does_not_stop_the_others(sim, settings, layout):
    sim.script("stooq", "MSFT", [Fault.stooq("no_data")])
    summary = run_ingest(
        layout, "stooq", ["AAPL", "MSFT", "../etc", "BRK.B"], settings=settings, progress=False, concurrency=2
    )
    status = {o.symbol: o.status for o in summary.outcomes}
    assert status == {
        "AAPL": Outcome.FETCHED,
        "MSFT": Outcome.FAILED,
        "../etc": Outcome.FAILED,
        "BRK.B": Outcome.FETCHED,
    }
    assert not summary.ok and len(summary.failed) == 2
    assert {r.symbol for r in sim.data_requests("stooq")} == {"AAPL", "MSFT", "BRK.B"}
    assert not (layout.raw / "stooq" / "MSFT").exists()


def test_quota_stops_the_source_and_skips_the_rest(sim, settings, layout):
    sim.script("av", "MSFT", [Fault.av("daily_quota")])
    summary = run_ingest(layout, "av", ["AAPL", "MSFT", "BRK.B", "ZZZ"], settings=settings, progress=False)
    assert [o.status for o in summary.outcomes] == [
        Outcome.FETCHED,
        Outcome.FAILED,
        Outcome.SKIPPED,
        Outcome.SKIPPED,
    ]
    assert "daily quota" in summary.outcomes[1].reason
    assert "QuotaExhaustedError" in summary.outcomes[2].reason
    assert len(sim.data_requests("av")) == 2


def test_missing_key_skips_everything_without_requests(sim, settings, layout):
    summary = run_ingest(
        layout, "av", ["AAPL", "MSFT"], settings=with_(settings, av_api_key=None), progress=False
    )
    assert [o.status for o in summary.outcomes] == [Outcome.FAILED, Outcome.SKIPPED]
    assert sim.requests == []


def test_errors_in_summary_are_redacted(sim, settings, layout):
    leaky = Fault.body('{"Error Message":"bad call for apikey=' + AV_KEY + " key " + AV_KEY + '"}')
    sim.script("av", "AAPL", [leaky])
    summary = run_ingest(layout, "av", ["AAPL"], settings=settings, progress=False)
    assert AV_KEY not in json.dumps(summary.rows(detail=True))


def test_dry_run_plans_and_writes_nothing(sim, settings, layout):
    summary = run_ingest(layout, "av", ["AAPL", "BRK.B"], settings=settings, progress=False, dry_run=True)
    assert summary.ok and all(o.status is Outcome.PLANNED for o in summary.outcomes)
    assert "apikey=***" in summary.outcomes[0].requests[0] and AV_KEY not in json.dumps(summary.rows(True))
    assert sim.requests == [] and not any(layout.root.rglob("*"))


def test_intraday_kind_and_folder(sim, settings, layout):
    summary = run_ingest(
        layout, "yf", ["MSFT"], kind="intraday", interval="15min", settings=settings, progress=False
    )
    assert summary.ok and summary.kind == "intraday-15m"
    [record] = list_raw(layout, "yfinance", "MSFT", "intraday-15m")
    assert (
        record.manifest["interval"] == "15m"
        and record.path.with_name(record.path.name + MANIFEST_SUFFIX).exists()
    )


_RATE_SCRIPT = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, {src!r})
    from pathlib import Path
    from cxq_data.errors import QuotaExhaustedError
    from cxq_data.ingest.ratelimit import FileRateLimiter
    lim = FileRateLimiter(Path(sys.argv[1]), min_interval_s=0.2, daily_limit=int(sys.argv[2]))
    stamps, refused = [], 0
    for _ in range(4):
        try:
            stamps.append(lim.acquire().last)  # the instant the request was allowed
        except QuotaExhaustedError:
            refused += 1
    print(json.dumps({{"stamps": stamps, "refused": refused}}))
""")


def test_rate_limit_holds_across_processes(tmp_path):
    script = tmp_path / "rate.py"
    script.write_text(_RATE_SCRIPT.format(src=SRC))
    state = tmp_path / "state" / "av.json"
    procs = [
        subprocess.Popen([sys.executable, str(script), str(state), "6"], stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    results = [json.loads(p.communicate(timeout=60)[0]) for p in procs]
    stamps = sorted(s for r in results for s in r["stamps"])
    assert len(stamps) == 6 and sum(r["refused"] for r in results) == 2  # 8 attempts, cap 6
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert min(gaps) >= 0.19, gaps  # spacing held between the two processes, not only within each
    assert json.loads(state.read_text())["count"] == 6
    assert time.time() - stamps[0] < 30
