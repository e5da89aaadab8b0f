"""Alpha Vantage ingestor (``/query`` over requests).

* Daily: ``TIME_SERIES_DAILY`` ``outputsize=compact`` (last 100 bars) on a free key;
  ``settings.av_premium`` -> ``TIME_SERIES_DAILY_ADJUSTED`` ``outputsize=full`` (adds adjusted close,
  dividends, split coefficients). The API has no date range: the whole answer is stored and the
  requested range is recorded in the manifest.
* Intraday: ``TIME_SERIES_INTRADAY`` with ``1min|5min|15min|30min|60min`` (``5m`` etc. accepted).

Every error comes back as HTTP 200 JSON and is classified by :func:`classify_av_body`; only the
burst message (``RateLimitedError``) is retried. A free key is limited to 1 request/s and 25
requests per UTC day across all processes (:mod:`cxq_data.ingest.ratelimit`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import requests

from cxq_data.errors import (
    ConfigError,
    InvalidApiKeyError,
    MalformedResponseError,
    PremiumRequiredError,
    ProviderError,
    QuotaExhaustedError,
    RateLimitedError,
    SymbolNotFoundError,
)
from cxq_data.ingest.base import PlannedRequest, canonical_interval, check_range, intraday_kind
from cxq_data.ingest.http import http_get, looks_like_html, new_session, with_retries
from cxq_data.ingest.ratelimit import FileRateLimiter
from cxq_data.normalize.base import RawFormat
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse
from cxq_data.settings import ProviderSettings, redact_params
from cxq_data.sources import Source
from cxq_data.symbols import provider_symbol, validate_symbol

AV_INTERVALS = {"1m": "1min", "5m": "5min", "15m": "15min", "30m": "30min", "60m": "60min"}
_MESSAGE_KEYS = ("Error Message", "Information", "Note")


def classify_av_body(body: bytes, what: str) -> dict[str, Any]:
    """The parsed body when it holds a time series; else the matching provider error."""
    if looks_like_html(body):
        raise MalformedResponseError(f"{what}: an HTML page instead of JSON")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(
            f"{what}: truncated or invalid JSON ({exc.__class__.__name__}: {exc})"
        ) from None
    if not isinstance(doc, dict):
        raise MalformedResponseError(f"{what}: expected a JSON object")
    series = [k for k in doc if k.startswith("Time Series")]
    if series:
        if not doc[series[0]]:
            raise SymbolNotFoundError(f"{what}: the time series is empty")
        return doc
    message = next((str(doc[k]) for k in _MESSAGE_KEYS if k in doc), None)
    if message is None:
        raise MalformedResponseError(f"{what}: neither a time series nor a message in the body")
    raise _error_for_message(message, is_error="Error Message" in doc, what=what)


def _error_for_message(message: str, *, is_error: bool, what: str) -> ProviderError:
    text = message.lower()
    # Order matters: the burst and quota messages also mention "premium" and "per day".
    if "apikey" in text and ("invalid" in text or "missing" in text):
        return InvalidApiKeyError(f"{what}: the API key was rejected (AV_API_KEY): {message}")
    if "spreading out" in text or "1 request per second" in text or "burst" in text:
        return RateLimitedError(f"{what}: burst limit: {message}")
    if "rate limit is" in text or "per day" in text:
        return QuotaExhaustedError(f"{what}: daily quota used up: {message}")
    if "premium" in text:
        return PremiumRequiredError(
            f"{what}: needs a premium key (set AV_PREMIUM only for premium keys): {message}"
        )
    if is_error:
        return SymbolNotFoundError(f"{what}: unknown symbol or invalid request: {message}")
    return ProviderError(f"{what}: {message}")


class AlphaVantageIngestor:
    source = Source.ALPHAVANTAGE
    max_concurrency = 1  # the burst limit is 1 request/s anyway

    def __init__(
        self, settings: ProviderSettings, layout: DataLayout, session: requests.Session | None = None
    ) -> None:
        self.settings = settings
        self.layout = layout
        self._session = session or new_session()
        self._url = settings.av_base_url.rstrip("/") + "/query"

    def _limiter(self) -> FileRateLimiter:
        cap = None if self.settings.av_premium else self.settings.av_daily_limit
        return FileRateLimiter.for_provider(
            self.layout, "alphavantage", min_interval_s=self.settings.av_min_interval_s, daily_limit=cap
        )

    # --- requests ---
    def _daily_params(self, symbol: str) -> tuple[RawFormat, dict[str, Any]]:
        premium = self.settings.av_premium
        function = "TIME_SERIES_DAILY_ADJUSTED" if premium else "TIME_SERIES_DAILY"
        fmt = RawFormat.AV_DAILY_ADJUSTED_JSON if premium else RawFormat.AV_DAILY_JSON
        params = {
            "function": function,
            "symbol": provider_symbol(symbol, self.source),
            "outputsize": "full" if premium else "compact",
            "datatype": "json",
            "apikey": self.settings.av_api_key or "",
        }
        return fmt, params

    def _intraday_params(self, symbol: str, interval: str) -> dict[str, Any]:
        canon = canonical_interval(interval)
        if canon not in AV_INTERVALS:
            raise ConfigError(f"Alpha Vantage has no {interval!r} bars; use one of {', '.join(AV_INTERVALS)}")
        return {
            "function": "TIME_SERIES_INTRADAY",
            "symbol": provider_symbol(symbol, self.source),
            "interval": AV_INTERVALS[canon],
            "outputsize": "full" if self.settings.av_premium else "compact",
            "datatype": "json",
            "apikey": self.settings.av_api_key or "",
        }

    def plan_daily(self, symbol: str, start: dt.date | None, end: dt.date | None) -> list[PlannedRequest]:
        canon = validate_symbol(symbol)
        check_range(canon, start, end)
        _, params = self._daily_params(canon)
        return [
            PlannedRequest.redacted(self.source, canon, "daily", self._url, params, self.settings.secrets())
        ]

    def plan_intraday(self, symbol: str, interval: str) -> list[PlannedRequest]:
        canon = validate_symbol(symbol)
        params = self._intraday_params(canon, interval)
        return [
            PlannedRequest.redacted(
                self.source, canon, intraday_kind(interval), self._url, params, self.settings.secrets()
            )
        ]

    def fetch_daily(self, symbol: str, start: dt.date | None, end: dt.date | None) -> list[RawResponse]:
        canon = validate_symbol(symbol)
        check_range(canon, start, end)
        fmt, params = self._daily_params(canon)
        extra = {
            "requested_start": start.isoformat() if start else None,
            "requested_end": end.isoformat() if end else None,
        }
        return [self._fetch(canon, "daily", fmt, params, extra)]

    def fetch_intraday(self, symbol: str, interval: str) -> list[RawResponse]:
        canon = validate_symbol(symbol)
        params = self._intraday_params(canon, interval)
        extra = {"interval": canonical_interval(interval)}
        return [self._fetch(canon, intraday_kind(interval), RawFormat.AV_INTRADAY_JSON, params, extra)]

    def _fetch(
        self, symbol: str, kind: str, fmt: RawFormat, params: dict[str, Any], extra: dict[str, Any]
    ) -> RawResponse:
        if not self.settings.av_api_key:
            raise InvalidApiKeyError("alphavantage: no API key; set AV_API_KEY in the environment or .env")
        what = f"alphavantage {symbol} ({params['function']})"
        limiter = self._limiter()

        def attempt() -> requests.Response:
            limiter.acquire()
            response = http_get(self._session, self._url, params, self.settings, what)
            try:
                classify_av_body(response.content, what)
            except QuotaExhaustedError:
                limiter.mark_exhausted()  # other processes stop too, without a request
                raise
            return response

        response = with_retries(attempt, self.settings, what)
        meta = {
            "format": fmt.value,
            "provider_symbol": params["symbol"],
            "function": params["function"],
            "outputsize": params["outputsize"],
            **extra,
        }
        return RawResponse(
            source=self.source.value,
            symbol=symbol,
            body=response.content,
            ext="json",
            kind=kind,
            url=self._url,
            params=redact_params(params),
            http_status=response.status_code,
            content_type=response.headers.get("Content-Type"),
            extra=meta,
        )
