"""Finding records, the fixed set of check names and their severities."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any


class Severity(str, Enum):
    ERROR = "error"
    WARNING = "warning"

    def __str__(self) -> str:
        return self.value


class Check(str, Enum):
    """Stable check names (they appear in JSON output and in scripts that read it)."""

    OHLC_INCONSISTENT = "ohlc_inconsistent"
    NON_POSITIVE_PRICE = "non_positive_price"
    NULL_PRICE = "null_price"
    DUPLICATE_DATE = "duplicate_date"
    MISSING_SESSION = "missing_session"
    EXTRA_SESSION = "extra_session"
    PRICE_UNIT_JUMP = "price_unit_jump"
    UNADJUSTED_SPLIT = "unadjusted_split"
    DIVIDEND_ADJUSTMENT = "dividend_adjustment"
    ZERO_VOLUME = "zero_volume"
    NEGATIVE_VOLUME = "negative_volume"
    STALE_PRICE = "stale_price"
    RETURN_OUTLIER = "return_outlier"
    RESTATED_HISTORY = "restated_history"

    def __str__(self) -> str:
        return self.value


# Errors make the data wrong for any use; warnings are worth a look but may be real market events.
ERROR_CHECKS = frozenset(
    {
        Check.OHLC_INCONSISTENT,
        Check.NON_POSITIVE_PRICE,
        Check.NEGATIVE_VOLUME,
        Check.DUPLICATE_DATE,
        Check.PRICE_UNIT_JUMP,
        Check.UNADJUSTED_SPLIT,
        Check.DIVIDEND_ADJUSTMENT,
    }
)


def severity_of(check: Check) -> Severity:
    return Severity.ERROR if check in ERROR_CHECKS else Severity.WARNING


@dataclass(frozen=True)
class Finding:
    """One problem on one date (``date`` is None for a problem of the whole series)."""

    symbol: str
    source: str
    date: dt.date | None
    check: Check
    severity: Severity
    detail: str

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["date"] = self.date.isoformat() if self.date else None
        out["check"] = self.check.value
        out["severity"] = self.severity.value
        return out


@dataclass(frozen=True)
class Issue:
    """What a pure check returns: a date and why; symbol/source/severity are added by the runner."""

    date: dt.date | None
    check: Check
    detail: str


def to_findings(issues: list[Issue], symbol: str, source: str) -> list[Finding]:
    """Attach symbol/source/severity; keep one finding per (check, date) (the first reason wins)."""
    seen: set[tuple[Check, dt.date | None]] = set()
    out = []
    for issue in issues:
        key = (issue.check, issue.date)
        if key in seen:
            continue
        seen.add(key)
        out.append(Finding(symbol, source, issue.date, issue.check, severity_of(issue.check), issue.detail))
    return out


def sort_findings(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.symbol, f.source, f.date or dt.date.min, f.check.value))


def has_errors(findings: list[Finding]) -> bool:
    return any(f.severity is Severity.ERROR for f in findings)
