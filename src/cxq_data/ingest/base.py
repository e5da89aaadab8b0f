"""The ingestor contract: a structural Protocol every provider ingestor satisfies (no inheritance).

An ingestor turns one symbol into provider responses, byte for byte, wrapped in
:class:`cxq_data.raw.RawResponse` with ``extra={"format": RawFormat.X.value, ...}`` so the normalizer
knows how to read them. It validates and maps the symbol before it reaches a URL, classifies
provider error bodies into :mod:`cxq_data.errors` exceptions and never writes files itself (the
runner does, through :func:`cxq_data.raw.write_raw`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from cxq_data.errors import ConfigError
from cxq_data.raw import RawResponse
from cxq_data.settings import redact_params, redact_text
from cxq_data.sources import Source

# Canonical intraday intervals (Yahoo spelling); aliases map onto them.
INTRADAY_INTERVALS = ("1m", "2m", "5m", "15m", "30m", "60m", "90m")
_INTERVAL_ALIASES = {"1h": "60m", "1min": "1m", "5min": "5m", "15min": "15m", "30min": "30m", "60min": "60m"}


def canonical_interval(interval: str) -> str:
    """``5min``/``5m`` -> ``5m``; ``1h``/``60min`` -> ``60m``; anything else raises ``ConfigError``."""
    text = (interval or "").strip().lower()
    text = _INTERVAL_ALIASES.get(text, text)
    if text not in INTRADAY_INTERVALS:
        raise ConfigError(
            f"invalid intraday interval {interval!r}; use one of {', '.join(INTRADAY_INTERVALS)}"
        )
    return text


def intraday_kind(interval: str) -> str:
    return f"intraday-{canonical_interval(interval)}"


@dataclass(frozen=True)
class PlannedRequest:
    """A request an ingestor would send (``--dry-run``); secrets already redacted."""

    source: str
    symbol: str
    kind: str
    url: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def redacted(
        cls, source: Source, symbol: str, kind: str, url: str, params: dict[str, Any], secrets: list[str]
    ) -> PlannedRequest:
        clean = {k: redact_text(str(v), secrets) for k, v in redact_params(params).items()}
        return cls(source.value, symbol, kind, redact_text(url, secrets), clean)

    def describe(self) -> str:
        query = "&".join(f"{k}={v}" for k, v in self.params.items())
        return f"GET {self.url}?{query}" if query else f"GET {self.url}"


@runtime_checkable
class BaseIngestor(Protocol):
    """What the runner needs from a provider ingestor."""

    source: Source
    max_concurrency: int

    def fetch_daily(self, symbol: str, start: dt.date | None, end: dt.date | None) -> list[RawResponse]:
        """Daily bars of ``symbol`` for [start, end] (inclusive dates; None = provider default)."""
        ...

    def fetch_intraday(self, symbol: str, interval: str) -> list[RawResponse]:
        """Recent intraday bars of ``symbol`` at ``interval`` (``5m``, ``15m`` ...)."""
        ...

    def plan_daily(self, symbol: str, start: dt.date | None, end: dt.date | None) -> list[PlannedRequest]:
        """The requests :meth:`fetch_daily` would send, secrets redacted (no I/O)."""
        ...

    def plan_intraday(self, symbol: str, interval: str) -> list[PlannedRequest]:
        """The requests :meth:`fetch_intraday` would send, secrets redacted (no I/O)."""
        ...


def check_range(symbol: str, start: dt.date | None, end: dt.date | None) -> None:
    if start and end and start > end:
        raise ConfigError(f"{symbol}: start {start} is after end {end}")
