"""Progress bars for the batch (tqdm on stderr): one overall bar (source bytes, days) and one per date
(rows/s while converting, bytes while uploading). Disabled with ``enabled=False`` or when stderr is
not a terminal, so logs and CliRunner output stay clean.
"""

from __future__ import annotations

import sys
from typing import Any, Self


class DayProgress:
    def __init__(self, bar: Any | None, date: str) -> None:
        self.bar = bar
        self.date = date

    def rows(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def start_upload(self, size: int) -> None:
        if self.bar is not None:
            self.bar.reset(total=size)
            self.bar.unit, self.bar.unit_scale = "B", True
            self.bar.set_description(f"{self.date} upload")

    def sent(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)


class BatchProgress:
    def __init__(self, *, total_days: int, total_bytes: int, enabled: bool = True) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._overall = None
        if self.enabled:
            from tqdm import tqdm

            self._tqdm = tqdm
            self._overall = tqdm(total=total_bytes, unit="B", unit_scale=True, desc=f"{total_days} days",
                                 position=0, file=sys.stderr, dynamic_ncols=True)
        self._day_bar: Any | None = None

    def day(self, date: str) -> DayProgress:
        if not self.enabled:
            return DayProgress(None, date)
        self._close_day()
        self._day_bar = self._tqdm(desc=f"{date} convert", unit="rows", unit_scale=True, position=1,
                                   leave=False, file=sys.stderr, dynamic_ncols=True)
        return DayProgress(self._day_bar, date)

    def finish_day(self, source_bytes: int, status: str) -> None:
        self._close_day()
        if self._overall is not None:
            self._overall.update(source_bytes)
            self._overall.set_postfix_str(status, refresh=True)

    def _close_day(self) -> None:
        if self._day_bar is not None:
            self._day_bar.close()
            self._day_bar = None

    def close(self) -> None:
        self._close_day()
        if self._overall is not None:
            self._overall.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
