"""Precision and recall of every check on the seeded injector's cases.

* recall = labelled cases of check C with a C finding inside the case window / cases of C;
* precision = C findings inside a C window / (those + C findings on dates where nothing was
  injected). A C finding on another check's injected dates is a consequence of that defect (a
  zero close also breaks OHLC order) and is counted as ``collateral``, not as a false alarm.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from cxq_data.quality.findings import Check
from cxq_data.quality.inject import SYMBOL, Case, cases
from cxq_data.quality.validate import validate_frames

SLACK_DAYS = 4  # calendar days around a window (a weekend between the defect and its detection)


@dataclass
class CheckScore:
    check: str
    cases: int
    detected: int
    true_findings: int
    false_findings: int
    collateral: int
    precision: float | None
    recall: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _inside(date: dt.date | None, window: tuple[dt.date, dt.date] | None) -> bool:
    if date is None or window is None:
        return False
    slack = dt.timedelta(days=SLACK_DAYS)
    return window[0] - slack <= date <= window[1] + slack


def score_cases(all_cases: list[Case], config: dict[str, Any] | None = None) -> list[CheckScore]:
    tallies = {c: {"cases": 0, "detected": 0, "true": 0, "false": 0, "collateral": 0} for c in Check}
    for case in all_cases:
        findings = validate_frames(SYMBOL, "synthetic", case.series, case.actions, config, case.fetches)
        if case.check is not None:
            tallies[case.check]["cases"] += 1
            if any(f.check is case.check and _inside(f.date, case.window) for f in findings):
                tallies[case.check]["detected"] += 1
        for f in findings:
            t = tallies[f.check]
            if _inside(f.date, case.window):
                t["true" if f.check is case.check else "collateral"] += 1
            else:
                t["false"] += 1
    return [_score(check, t) for check, t in tallies.items()]


def _score(check: Check, t: dict[str, int]) -> CheckScore:
    flagged = t["true"] + t["false"]
    return CheckScore(check.value, t["cases"], t["detected"], t["true"], t["false"], t["collateral"],
                      round(t["true"] / flagged, 4) if flagged else None,
                      round(t["detected"] / t["cases"], 4) if t["cases"] else None)


def quality_scores(n: int = 50, seed: int = 7) -> list[CheckScore]:
    """Scores over ``n`` injected cases per check plus ``n`` clean controls."""
    return score_cases(cases(n, seed))
