"""Fetch many symbols from one provider into the raw layer, with bounded concurrency and a summary.

One symbol's failure never stops the others; an error that ends the source for the day (quota used
up, key rejected, challenge page) stops the rest of that source, and those symbols are reported as
skipped with the reason. Raw files are written through :func:`cxq_data.raw.write_raw` (immutable,
secrets refused); every error text in the summary is redacted.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal

from cxq_data.errors import ConfigError, CxqError, ProviderError
from cxq_data.paths import DataLayout
from cxq_data.settings import ProviderSettings, redact_text
from cxq_data.sources import Source, provider_source
from cxq_data.symbols import validate_symbol

log = logging.getLogger("cxq_data.ingest")
MAX_CONCURRENCY = 16


class Outcome(str, Enum):
    FETCHED = "fetched"
    SKIPPED = "skipped"
    FAILED = "failed"
    PLANNED = "planned"  # --dry-run


@dataclass
class SymbolOutcome:
    symbol: str
    source: str
    kind: str
    status: Outcome
    reason: str | None = None
    files: list[str] = field(default_factory=list)  # raw data files written, relative to the data dir
    requests: list[str] = field(default_factory=list)  # dry run: the requests that would be sent

    def row(self, detail: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "symbol": self.symbol,
            "source": self.source,
            "kind": self.kind,
            "status": self.status.value,
            "files": len(self.files),
            "reason": self.reason,
        }
        if detail:
            out["raw_files"] = list(self.files)
            if self.requests:
                out["requests"] = list(self.requests)
        return out


@dataclass
class IngestSummary:
    source: str
    kind: str
    outcomes: list[SymbolOutcome]
    dry_run: bool = False

    def _with(self, status: Outcome) -> list[SymbolOutcome]:
        return [o for o in self.outcomes if o.status is status]

    @property
    def fetched(self) -> list[SymbolOutcome]:
        return self._with(Outcome.FETCHED)

    @property
    def skipped(self) -> list[SymbolOutcome]:
        return self._with(Outcome.SKIPPED)

    @property
    def failed(self) -> list[SymbolOutcome]:
        return self._with(Outcome.FAILED)

    @property
    def ok(self) -> bool:
        """True when every symbol was fetched (or planned, in a dry run)."""
        return all(o.status in (Outcome.FETCHED, Outcome.PLANNED) for o in self.outcomes)

    def rows(self, detail: bool = False) -> list[dict[str, Any]]:
        return [o.row(detail) for o in self.outcomes]

    def counts(self) -> str:
        if self.dry_run:
            return (
                f"{self.source} {self.kind}: dry run, {len(self.outcomes)} symbol(s) planned, nothing written"
            )
        return (
            f"{self.source} {self.kind}: fetched {len(self.fetched)}, skipped {len(self.skipped)}, "
            f"failed {len(self.failed)}"
        )


@dataclass
class _Job:
    """What every worker shares: the ingestor, the request and the stop-the-source flag."""

    layout: DataLayout
    settings: ProviderSettings
    ingestor: Any
    kind: str
    start: dt.date | None
    end: dt.date | None
    interval: str | None
    dry_run: bool
    stop: threading.Event = field(default_factory=threading.Event)
    stop_reason: str = ""

    @property
    def kind_name(self) -> str:
        return "daily" if self.kind == "daily" else f"intraday-{self.interval}"


def run_ingest(
    layout: DataLayout,
    source: str,
    symbols: list[str],
    *,
    start: dt.date | None = None,
    end: dt.date | None = None,
    kind: Literal["daily", "intraday"] = "daily",
    interval: str | None = None,
    settings: ProviderSettings | None = None,
    progress: bool = True,
    concurrency: int | None = None,
    dry_run: bool = False,
) -> IngestSummary:
    """Fetch ``symbols`` from ``source`` (``yf``/``av``/``stooq`` or long names) into ``layout.raw``."""
    from cxq_data.ingest.base import canonical_interval
    from cxq_data.ingest.registry import get_ingestor

    settings = settings or ProviderSettings.from_env()
    src = provider_source(source)
    if kind not in ("daily", "intraday"):
        raise ConfigError(f"invalid kind {kind!r}: use daily or intraday")
    if kind == "intraday":
        if not interval:
            raise ConfigError("intraday fetches need an interval (e.g. 5m)")
        interval = canonical_interval(interval)
    ingestor = get_ingestor(src, settings, layout)
    job = _Job(layout, settings, ingestor, kind, start, end, interval, dry_run)
    names = _unique(symbols)
    workers = _workers(ingestor.max_concurrency, concurrency, len(names))
    outcomes = _run_all(job, src, names, workers, progress)
    summary = IngestSummary(src.value, job.kind_name, outcomes, dry_run)
    log.info("%s", summary.counts())
    return summary


def _unique(symbols: list[str]) -> list[str]:
    """Deduplicate by canonical spelling; invalid names are kept so they are reported, not dropped."""
    seen: dict[str, str] = {}
    for raw in symbols:
        try:
            key = validate_symbol(raw)
        except CxqError:
            key = raw
        seen.setdefault(key, key)
    return list(seen)


def _workers(provider_max: int, requested: int | None, count: int) -> int:
    if provider_max == 1:  # Alpha Vantage: one request at a time, whatever was asked
        return 1
    wanted = requested if requested is not None else provider_max
    return max(1, min(wanted, MAX_CONCURRENCY, max(count, 1)))


def _run_all(job: _Job, src: Source, names: list[str], workers: int, progress: bool) -> list[SymbolOutcome]:
    from tqdm import tqdm

    bar = tqdm(
        total=len(names),
        desc=f"{src.value} {job.kind_name}",
        unit="symbol",
        file=sys.stderr,
        disable=not progress or not sys.stderr.isatty(),
    )

    def task(name: str) -> SymbolOutcome:
        try:
            return _one_symbol(job, src, name)
        finally:
            bar.update(1)

    try:
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"ingest-{src.value}") as pool:
            return list(pool.map(task, names))
    finally:
        bar.close()


def _one_symbol(job: _Job, src: Source, name: str) -> SymbolOutcome:
    outcome = SymbolOutcome(name, src.value, job.kind_name, Outcome.FAILED)
    if job.stop.is_set():
        outcome.status, outcome.reason = Outcome.SKIPPED, f"not attempted: {job.stop_reason}"
        return outcome
    secrets = job.settings.secrets()
    try:
        outcome.symbol = validate_symbol(name)
        if job.dry_run:
            outcome.requests = [p.describe() for p in _plan(job, outcome.symbol)]
            outcome.status = Outcome.PLANNED
            return outcome
        outcome.files = _fetch_and_store(job, outcome.symbol)
        outcome.status = Outcome.FETCHED
    except CxqError as exc:
        outcome.reason = redact_text(str(exc), secrets)
        if isinstance(exc, ProviderError) and exc.stop_source:
            job.stop_reason = f"{src.value} stopped after {outcome.symbol}: {type(exc).__name__}"
            job.stop.set()
    except Exception as exc:  # a bug or an unexpected library error must not stop the other symbols
        log.exception("%s %s: unexpected error", src.value, name)
        outcome.reason = redact_text(f"unexpected {type(exc).__name__}: {exc}", secrets)
    return outcome


def _plan(job: _Job, symbol: str) -> list[Any]:
    if job.kind == "daily":
        return job.ingestor.plan_daily(symbol, job.start, job.end)  # type: ignore[no-any-return]
    return job.ingestor.plan_intraday(symbol, job.interval)  # type: ignore[no-any-return]


def _fetch_and_store(job: _Job, symbol: str) -> list[str]:
    from cxq_data.normalize.base import check_response
    from cxq_data.raw import write_raw

    if job.kind == "daily":
        responses = job.ingestor.fetch_daily(symbol, job.start, job.end)
    else:
        responses = job.ingestor.fetch_intraday(symbol, job.interval)
    for resp in responses:  # every body must be readable before any is stored
        check_response(resp)
    written = []
    for resp in responses:
        record = write_raw(job.layout, resp, secrets=job.settings.secrets())
        written.append(str(record.path.relative_to(job.layout.root)))
    return written
