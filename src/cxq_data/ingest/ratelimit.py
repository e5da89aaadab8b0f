"""A request rate limit that holds across threads and processes (file lock + JSON state).

State lives in ``D/state/ratelimit/{name}.json``: ``{"day": "YYYY-MM-DD", "count": n, "last": epoch}``.
:meth:`FileRateLimiter.acquire` takes the lock, waits until ``min_interval_s`` has passed since the
last request of *any* process, counts the request against the UTC day and releases the lock. Holding
the lock while sleeping is deliberate: it queues every caller behind the one that goes next.
Once ``daily_limit`` requests were counted today, ``acquire`` raises :class:`QuotaExhaustedError`
without a request; :meth:`mark_exhausted` records a quota message from the provider the same way.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from cxq_data.atomic import atomic_write_json
from cxq_data.errors import QuotaExhaustedError
from cxq_data.paths import DataLayout


@dataclass
class RateState:
    day: str
    count: int = 0
    last: float = 0.0


class FileRateLimiter:
    def __init__(
        self,
        state_file: Path,
        *,
        min_interval_s: float = 1.0,
        daily_limit: int | None = None,
        name: str = "provider",
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.state_file = state_file
        self.min_interval_s = min_interval_s
        self.daily_limit = daily_limit
        self.name = name
        self._clock = clock
        self._sleep = sleep
        self._lock = FileLock(str(state_file) + ".lock")

    @classmethod
    def for_provider(cls, layout: DataLayout, name: str, **kwargs: object) -> FileRateLimiter:
        return cls(layout.state / "ratelimit" / f"{name}.json", name=name, **kwargs)  # type: ignore[arg-type]

    def acquire(self) -> RateState:
        """Block until a request may go out; count it. Raises QuotaExhaustedError at the daily cap."""
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            state = self._read()
            if self.daily_limit is not None and state.count >= self.daily_limit:
                raise QuotaExhaustedError(
                    f"{self.name}: daily quota of {self.daily_limit} requests used up for {state.day} (UTC); "
                    "try again tomorrow or use a premium key"
                )
            wait = state.last + self.min_interval_s - self._clock()
            if wait > 0:
                self._sleep(wait)
            state = RateState(self._today(), state.count + 1, self._clock())
            self._write(state)
            return state

    def mark_exhausted(self) -> None:
        """The provider said the daily quota is used up: stop local requests until the UTC day ends."""
        if self.daily_limit is None:
            return
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        with self._lock:
            state = self._read()
            self._write(RateState(state.day, max(state.count, self.daily_limit), state.last))

    def state(self) -> RateState:
        with self._lock:
            return self._read()

    def _today(self) -> str:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC).date().isoformat()

    def _read(self) -> RateState:
        today = self._today()
        try:
            doc = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):  # first use, or a file a crash left empty
            return RateState(today)
        last = float(doc.get("last", 0.0))
        if doc.get("day") != today:  # a new UTC day resets the count, not the spacing
            return RateState(today, 0, last)
        return RateState(today, int(doc.get("count", 0)), last)

    def _write(self, state: RateState) -> None:
        atomic_write_json(self.state_file, {"day": state.day, "count": state.count, "last": state.last})
