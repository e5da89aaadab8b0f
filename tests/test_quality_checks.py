"""Quality checks: calibration on real Yahoo defects, and every check on injected defects."""

from __future__ import annotations

import datetime as dt

import pytest
from quality_lake import FIXTURES

from cxq_data.quality.findings import Check, Severity
from cxq_data.quality.frames import frames_from_csv
from cxq_data.quality.inject import SYMBOL, cases
from cxq_data.quality.scores import _inside, score_cases
from cxq_data.quality.validate import validate_frames

CALIBRATION = [
    ("AET-L-1d-100x-error", "AET.L", Check.PRICE_UNIT_JUMP, {dt.date(2022, 5, 9), dt.date(2022, 5, 20)}),
    ("MOB-ST-1d-bad-stock-split", "MOB.ST", Check.UNADJUSTED_SPLIT, {dt.date(2023, 5, 22)}),
    ("8TRA-DE-1d-missing-div-adjust", "8TRA.DE", Check.DIVIDEND_ADJUSTMENT, {dt.date(2023, 6, 2)}),
]


@pytest.mark.parametrize(("name", "symbol", "check", "dates"), CALIBRATION)
def test_yahoo_defect_flagged_and_fixed_twin_clean(name: str, symbol: str, check: Check, dates: set) -> None:
    series, actions = frames_from_csv(FIXTURES / f"{name}.csv")
    flagged = [f for f in validate_frames(symbol, "yfinance_csv", series, actions) if f.check is check]
    assert {f.date for f in flagged} == dates
    assert all(f.severity is Severity.ERROR for f in flagged)
    fixed_series, fixed_actions = frames_from_csv(FIXTURES / f"{name}-fixed.csv")
    fixed = validate_frames(symbol, "yfinance_csv", fixed_series, fixed_actions)
    assert not [f for f in fixed if f.check is check]
    assert not [f for f in fixed if f.severity is Severity.ERROR]


def test_calendar_uses_exchange_of_suffix() -> None:
    # 8TRA.DE skips 2023-06-01, a normal XETR session; AET.L skips 2022-06-02/03, UK bank holidays.
    series, actions = frames_from_csv(FIXTURES / "8TRA-DE-1d-missing-div-adjust-fixed.csv")
    missing = [f.date for f in validate_frames("8TRA.DE", "x", series, actions) if f.check is Check.MISSING_SESSION]
    assert missing == [dt.date(2023, 6, 1)]
    series, actions = frames_from_csv(FIXTURES / "AET-L-1d-100x-error-fixed.csv")
    found = validate_frames("AET.L", "x", series, actions)
    assert not [f for f in found if f.check in (Check.MISSING_SESSION, Check.EXTRA_SESSION)]
    # the same bars under a US symbol: NYSE was open on 2022-06-02/03 and closed on 2022-05-30
    as_us = {(f.check, f.date) for f in validate_frames("AET", "x", series, actions)}
    assert (Check.MISSING_SESSION, dt.date(2022, 6, 2)) in as_us
    assert (Check.EXTRA_SESSION, dt.date(2022, 5, 30)) in as_us


@pytest.fixture(scope="module")
def injected() -> dict:
    all_cases = cases(n=8, seed=11)
    return {"cases": all_cases}


@pytest.mark.parametrize("check", list(Check))
def test_each_check_detects_its_injected_defect(check: Check, injected: dict) -> None:
    mine = [c for c in injected["cases"] if c.check is check]
    assert len(mine) == 8

    def detected(config: dict | None) -> int:
        hits = 0
        for case in mine:
            found = validate_frames(SYMBOL, "synthetic", case.series, case.actions, config, case.fetches)
            hits += any(f.check is check and _inside(f.date, case.window) for f in found)
        return hits

    assert detected(None) >= 7
    assert detected({"disabled_checks": [check.value]}) == 0


def test_clean_controls_raise_no_errors(injected: dict) -> None:
    controls = [c for c in injected["cases"] if c.check is None]
    for case in controls:
        found = validate_frames(SYMBOL, "synthetic", case.series, case.actions, None, case.fetches)
        assert not [f for f in found if f.severity is Severity.ERROR], found


def test_scores_count_true_and_false_findings(injected: dict) -> None:
    scores = {s.check: s for s in score_cases(injected["cases"])}
    assert scores["price_unit_jump"].cases == 8
    assert scores["price_unit_jump"].recall == 1.0
    assert all(s.precision is None or 0.0 <= s.precision <= 1.0 for s in scores.values())


def test_return_outlier_threshold_is_configurable() -> None:
    series, actions = frames_from_csv(FIXTURES / "MOB-ST-1d-bad-stock-split-fixed.csv")
    series.loc[5, ["open", "high", "low", "close", "adjusted_close"]] *= 1.25
    loose = validate_frames("MOB.ST", "x", series, actions)
    strict = validate_frames("MOB.ST", "x", series, actions, {"return_threshold": 0.2})
    assert not [f for f in loose if f.check is Check.RETURN_OUTLIER]
    assert next(f.date for f in strict if f.check is Check.RETURN_OUTLIER) == dt.date(2023, 5, 15)
