"""Two small threading helpers that let C code (zstd, Parquet encoding) overlap with numpy work.

zstandard, hashlib, file I/O and pyarrow's Parquet writer release the GIL, so one helper thread
gives real parallelism on a 2-core box. Both helpers are bounded (memory stays flat) and never
leave a thread running after the caller is done or has failed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterable[T], depth: int = 8) -> Iterator[T]:
    """Iterate ``items`` in a helper thread, at most ``depth`` items ahead; exceptions re-raise here."""
    buffer: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: Any) -> bool:
        while not stop.is_set():
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False  # the consumer has gone

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
            offer(_DONE)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            offer(exc)

    worker = threading.Thread(target=produce, name="cxq-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full queue
            try:
                buffer.get(timeout=0.05)
            except queue.Empty:
                pass
        worker.join()


class BackgroundCalls:
    """Run calls one at a time, in order, on one helper thread, with at most ``depth`` pending."""

    def __init__(self, depth: int = 1) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxq-writer")
        self._pending: list[Future[Any]] = []
        self._depth = depth

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while len(self._pending) >= self._depth:
            self._pending.pop(0).result()  # re-raises the writer's error here
        self._pending.append(self._pool.submit(fn, *args))

    def drain(self) -> None:
        while self._pending:
            self._pending.pop(0).result()

    def __enter__(self) -> BackgroundCalls:  # noqa: PYI034
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            if exc_info[0] is None:
                self.drain()
        finally:
            for future in self._pending:
                future.cancel()
            self._pool.shutdown(wait=True)
