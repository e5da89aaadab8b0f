"""Outcome records of processing (symbol, source) pairs into the lake: per-symbol result and run summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import pyarrow as pa

from cxq_data.errors import CxqError


class Status(str, Enum):
    WRITTEN = "written"  # at least one file changed
    UNCHANGED = "unchanged"  # every file already held these bytes
    FAILED = "failed"


@dataclass
class SymbolResult:
    """What :func:`process_symbol` did for one (symbol, source)."""

    symbol: str
    source: str
    status: Status
    rows: int = 0
    years: list[int] = field(default_factory=list)
    files_written: int = 0
    files_unchanged: int = 0
    files_removed: int = 0
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "source": self.source, "status": self.status.value, "rows": self.rows,
                "years": len(self.years), "written": self.files_written, "unchanged": self.files_unchanged,
                "removed": self.files_removed, "reason": self.reason}


@dataclass
class ProcessSummary:
    results: list[SymbolResult]

    @property
    def ok(self) -> bool:
        return all(r.status is not Status.FAILED for r in self.results)

    def count(self, status: Status) -> int:
        return sum(1 for r in self.results if r.status is status)

    @property
    def count_written(self) -> int:
        return self.count(Status.WRITTEN)

    @property
    def count_unchanged(self) -> int:
        return self.count(Status.UNCHANGED)

    @property
    def count_failed(self) -> int:
        return self.count(Status.FAILED)

    def rows(self) -> list[dict[str, Any]]:
        return [r.to_dict() for r in self.results]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "written": self.count(Status.WRITTEN), "unchanged": self.count(Status.UNCHANGED),
                "failed": self.count(Status.FAILED), "results": self.rows()}


def failure_reason(exc: Exception) -> str:
    """The message of an expected failure (bad data, I/O); the type too for anything else, which
    is a bug to report but still only fails its own symbol."""
    if isinstance(exc, (CxqError, ValueError, OSError, pa.ArrowException)):
        return str(exc)
    return f"unexpected {type(exc).__name__}: {exc}"
