"""Shared HTTP plumbing for the ingestors: timeouts, classified errors, retries with backoff + jitter.

Only :class:`RateLimitedError` and :class:`TransientProviderError` (HTTP 429, 5xx, timeouts, dropped
connections) are retried, ``settings.max_retries`` times, sleeping
``backoff_base_s * 2**attempt * (1 + jitter)``. Everything else (unknown symbol, quota, bad key,
malformed body) fails at once. Messages and log lines pass through ``redact_text`` so no key leaks.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import requests

from cxq_data.errors import ProviderError, RateLimitedError, TransientProviderError
from cxq_data.settings import ProviderSettings, redact_text

log = logging.getLogger("cxq_data.ingest")
T = TypeVar("T")
USER_AGENT = "cxq_data/0.1 (+https://github.com/; market-data lake)"


def backoff_delay(attempt: int, base_s: float, rng: random.Random | None = None) -> float:
    """Exponential backoff with up to 50 % jitter: base * 2**attempt * [1, 1.5)."""
    return base_s * (2**attempt) * (1 + 0.5 * (rng or random).random())


def with_retries(
    call: Callable[[], T], settings: ProviderSettings, what: str, sleep: Callable[[float], None] = time.sleep
) -> T:
    """Run ``call``; retry it while it raises a retryable :class:`ProviderError`."""
    attempt = 0
    while True:
        try:
            return call()
        except ProviderError as exc:
            if not exc.retryable or attempt >= settings.max_retries:
                raise
            delay = backoff_delay(attempt, settings.backoff_base_s)
            log.warning(
                "%s; retry %d/%d in %.2fs",
                redact_text(str(exc), settings.secrets()),
                attempt + 1,
                settings.max_retries,
                delay,
            )
            sleep(delay)
            attempt += 1


def new_session() -> requests.Session:
    session = requests.Session()
    session.headers["User-Agent"] = USER_AGENT
    return session


def http_get(
    session: requests.Session, url: str, params: dict[str, Any], settings: ProviderSettings, what: str
) -> requests.Response:
    """One GET; transport failures, 429 and 5xx become retryable provider errors (redacted)."""
    secrets = settings.secrets()
    try:
        response = session.get(url, params=params, timeout=settings.timeout_s)
    # ``from None``: the original exception's message holds the URL with the key.
    except requests.Timeout:
        raise TransientProviderError(f"{what}: timed out after {settings.timeout_s:g}s") from None
    except requests.ConnectionError as exc:
        raise TransientProviderError(
            f"{what}: connection failed ({redact_text(str(exc), secrets)})"
        ) from None
    except requests.RequestException as exc:
        raise ProviderError(f"{what}: request failed ({redact_text(str(exc), secrets)})") from None
    raise_for_transport_status(response.status_code, response.text[:200], what, secrets)
    return response


def raise_for_transport_status(status: int, snippet: str, what: str, secrets: list[str]) -> None:
    if status == 429:
        raise RateLimitedError(f"{what}: HTTP 429 Too Many Requests")
    if status >= 500:
        raise TransientProviderError(f"{what}: HTTP {status} ({redact_text(_one_line(snippet), secrets)})")


def _one_line(text: str) -> str:
    return " ".join(text.split())[:120]


def looks_like_html(body: bytes) -> bool:
    head = body[:512].lstrip().lower()
    return head.startswith(b"<") or b"<html" in head
