"""Graceful shutdown for long batch runs.

First SIGINT/SIGTERM/SIGHUP: set a flag; the batch finishes the date in progress (its upload is verified and
its marker written) and stops before the next one. Second signal: raise ``KeyboardInterrupt`` at
once; cleanup handlers (temp files, multipart abort) still run, and since a marker is written only
after verification, the state stays consistent either way.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType
from typing import Any, Self


class GracefulStop:
    """Context manager; ``requested`` turns True after the first signal."""

    # SIGHUP: a closed terminal or SSH session; without it the run died like SIGKILL, mid-upload
    SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))

    def __init__(self, enabled: bool = True, message: str = "finishing the current date, then stopping") -> None:
        # Signal handlers can only be installed from the main thread.
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.message = message
        self.requested = False
        self.signal_name: str | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Self:
        if self.enabled:
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.requested:
            print(f"\n{name} again: aborting now (unfinished dates stay pending)", file=sys.stderr, flush=True)
            raise KeyboardInterrupt
        self.requested = True
        self.signal_name = name
        print(f"\n{name}: {self.message} (send again to abort now)", file=sys.stderr, flush=True)
