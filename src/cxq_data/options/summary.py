"""What a batch run did, per date and in total: the table and headline the CLI and the script print."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATUSES = ("uploaded", "skipped", "failed", "planned", "pending")


@dataclass
class DayOutcome:
    date: str
    status: str  # one of STATUSES
    rows: int | None = None
    bytes: int | None = None
    seconds: float | None = None
    detail: str = ""
    # the failure was the destination's (unreachable, refusing), not the day's: later days wait for a probe
    s3_unavailable: bool = False

    def as_row(self) -> dict[str, Any]:
        mb_s = (self.bytes / self.seconds / 1e6) if self.bytes and self.seconds else None
        return {"date": self.date, "status": self.status, "rows": self.rows, "bytes": self.bytes,
                "seconds": None if self.seconds is None else round(self.seconds, 2),
                "MB/s": None if mb_s is None else round(mb_s, 1), "detail": self.detail}


@dataclass
class BatchSummary:
    zip_path: Path
    dry_run: bool
    outcomes: list[DayOutcome] = field(default_factory=list)
    interrupted: bool = False
    stopped_early: str | None = None  # why the remaining dates were not attempted (S3 unavailable)

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def ok(self) -> bool:
        return not self.interrupted and self.stopped_early is None and self.count("failed") == 0

    @property
    def exit_code(self) -> int:
        """0 all done, 1 some dates failed (or S3 failed and the rest waits), 130 stopped by a signal."""
        if self.count("failed") or self.stopped_early:
            return 1
        return 130 if self.interrupted else 0

    def rows(self) -> list[dict[str, Any]]:
        return [o.as_row() for o in self.outcomes]

    def headline(self) -> str:
        parts = [f"{self.count(s)} {s}" for s in STATUSES if self.count(s)]
        prefix = "dry run: " if self.dry_run else ""
        tail = ""
        if self.stopped_early:
            tail = f" (stopped early: {self.stopped_early}; rerun to resume)"
        elif self.interrupted:
            tail = " (interrupted; rerun to resume)"
        return f"{prefix}{self.zip_path.name}: {len(self.outcomes)} dates: {', '.join(parts) or 'nothing'}{tail}"
