"""Yahoo Finance ingestor: the chart v8 endpoint through yfinance's session, stored as received.

We call ``yfinance.data.YfData().get(chart_url, params)`` (the research's approach (c)): yfinance
handles the cookie/crumb dance and its browser-impersonating transport, and we keep the raw chart
JSON byte for byte for the immutable raw layer (``yahoo_chart_json``) instead of a DataFrame.

Daily requests send ``period1``/``period2`` as local midnights in the exchange time zone (``end``
inclusive, so ``period2`` is the midnight after it), ``interval=1d`` and ``events=div,splits``.

``settings.yahoo_base_url`` (env ``CXQ_YAHOO_BASE_URL``) redirects every Yahoo host onto a local
server (the simulator): a ``requests.Session`` subclass rewrites the URLs, and ``YF_DISABLE_CURL_CFFI=1``
is set before yfinance is imported so that yfinance's own error handling expects requests' exceptions.
yfinance is imported on the first fetch, never at module import.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import threading
import time
import zoneinfo
from typing import Any

import requests

from cxq_data.errors import (
    MalformedResponseError,
    ProviderError,
    RateLimitedError,
    SymbolNotFoundError,
    TransientProviderError,
)
from cxq_data.ingest.base import PlannedRequest, canonical_interval, check_range, intraday_kind
from cxq_data.ingest.http import looks_like_html, with_retries
from cxq_data.normalize.base import RawFormat
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse
from cxq_data.settings import ProviderSettings, redact_text
from cxq_data.sources import Source
from cxq_data.symbols import DEFAULT_EXCHANGE, parse_symbol, provider_symbol, validate_symbol

CHART_URL = "https://query2.finance.yahoo.com/v8/finance/chart/{symbol}"
YAHOO_HOSTS = (
    "https://query1.finance.yahoo.com",
    "https://query2.finance.yahoo.com",
    "https://fc.yahoo.com",
    "https://guce.yahoo.com",
    "https://consent.yahoo.com",
)
# Intraday history Yahoo serves per request (1m: at most 8 days).
INTRADAY_RANGE = {
    "1m": "5d",
    "2m": "1mo",
    "5m": "1mo",
    "15m": "1mo",
    "30m": "1mo",
    "60m": "3mo",
    "90m": "1mo",
}
EXCHANGE_TZ = {
    "XNYS": "America/New_York",
    "XLON": "Europe/London",
    "XETR": "Europe/Berlin",
    "XFRA": "Europe/Berlin",
    "XSTO": "Europe/Stockholm",
    "XHKG": "Asia/Hong_Kong",
    "XTKS": "Asia/Tokyo",
    "XPAR": "Europe/Paris",
    "XMIL": "Europe/Rome",
    "XTSE": "America/Toronto",
    "XTSX": "America/Toronto",
    "XASX": "Australia/Sydney",
    "XAMS": "Europe/Amsterdam",
    "XBRU": "Europe/Brussels",
    "XSWX": "Europe/Zurich",
    "XMAD": "Europe/Madrid",
    "XCSE": "Europe/Copenhagen",
    "XOSL": "Europe/Oslo",
    "XHEL": "Europe/Helsinki",
    "XDUB": "Europe/Dublin",
    "XLIS": "Europe/Lisbon",
    "XWBO": "Europe/Vienna",
    "XNZE": "Pacific/Auckland",
    "XKRX": "Asia/Seoul",
    "XSHG": "Asia/Shanghai",
    "XSHE": "Asia/Shanghai",
    "XSES": "Asia/Singapore",
    "XJSE": "Africa/Johannesburg",
    "BVMF": "America/Sao_Paulo",
    "XMEX": "America/Mexico_City",
    "XWAR": "Europe/Warsaw",
    "XNSE": "Asia/Kolkata",
    "XBOM": "Asia/Kolkata",
    "XTAI": "Asia/Taipei",
}
_TRANSIENT_NAMES = {
    "Timeout",
    "TimeoutError",
    "ConnectionError",
    "ConnectTimeout",
    "ReadTimeout",
    "ChunkedEncodingError",
    "RemoteDisconnected",
    "ProxyError",
    "SSLError",
}


class HostRewritingSession(requests.Session):
    """A requests session that sends every Yahoo host to ``base_url`` (the local simulator)."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        text = url.decode() if isinstance(url, bytes) else url
        for host in YAHOO_HOSTS:
            if text.startswith(host):
                text = self.base_url + text[len(host) :]
                break
        return super().request(method, text, *args, **kwargs)


_setup_lock = threading.Lock()
_cache_dir_set = False


def _yf_data(settings: ProviderSettings, layout: DataLayout) -> Any:
    """yfinance's YfData singleton, with its session pointing where ``settings`` says."""
    global _cache_dir_set
    with _setup_lock:
        if settings.yahoo_base_url and "yfinance" not in sys.modules:
            os.environ["YF_DISABLE_CURL_CFFI"] = "1"  # must precede the import (yfinance._http reads it)
            # ... and then yfinance warns that it lost browser impersonation, which a local server ignores.
            logging.getLogger("yfinance").setLevel(logging.ERROR)
        import yfinance
        from yfinance.data import YfData

        if not _cache_dir_set:  # process-wide in yfinance; keep its cookie/tz SQLite out of ~/.cache
            cache_dir = layout.state / "yfinance-cache"
            cache_dir.mkdir(parents=True, exist_ok=True)
            yfinance.set_tz_cache_location(str(cache_dir))
            _cache_dir_set = True
        data = YfData()
        current = getattr(data, "_session", None)
        if settings.yahoo_base_url:
            if not (
                isinstance(current, HostRewritingSession)
                and current.base_url == settings.yahoo_base_url.rstrip("/")
            ):
                data = YfData(session=HostRewritingSession(settings.yahoo_base_url))
        elif isinstance(current, HostRewritingSession):  # back to the real hosts after a simulated run
            from yfinance.data import new_session

            data = YfData(session=new_session())
        return data


def reset_yfinance_state() -> None:
    """Forget yfinance's YfData singleton and our cache setup (tests; a new base URL per simulator)."""
    global _cache_dir_set
    with _setup_lock:
        _cache_dir_set = False
        if "yfinance.data" in sys.modules:
            from yfinance.data import SingletonMeta, YfData

            SingletonMeta._instances.pop(YfData, None)


def exchange_zone(symbol: str) -> zoneinfo.ZoneInfo:
    code = parse_symbol(symbol).exchange
    return zoneinfo.ZoneInfo(EXCHANGE_TZ.get(code, EXCHANGE_TZ[DEFAULT_EXCHANGE]))


def local_midnight(day: dt.date, zone: dt.tzinfo) -> int:
    return int(dt.datetime.combine(day, dt.time(0), tzinfo=zone).timestamp())


def classify_chart(status: int, body: bytes, what: str) -> dict[str, Any]:
    """The parsed chart document when it holds bars; else the matching provider error."""
    if status == 429:
        raise RateLimitedError(f"{what}: HTTP 429 Too Many Requests")
    if looks_like_html(body):
        if b"Will be right back" in body or status >= 500:
            raise TransientProviderError(
                f"{what}: Yahoo Finance is currently down (HTTP {status}, outage page)"
            )
        raise MalformedResponseError(f"{what}: an HTML page instead of chart JSON (HTTP {status})")
    if status >= 500:
        raise TransientProviderError(f"{what}: HTTP {status}")
    try:
        doc = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponseError(f"{what}: truncated or invalid JSON (HTTP {status}): {exc}") from None
    chart = doc.get("chart") if isinstance(doc, dict) else None
    if not isinstance(chart, dict):
        error = (doc.get("finance") or {}).get("error") if isinstance(doc, dict) else None
        if status == 401 or error:
            raise TransientProviderError(f"{what}: Yahoo refused the cookie/crumb (HTTP {status}): {error}")
        raise MalformedResponseError(f"{what}: not a chart body (HTTP {status})")
    _raise_chart_error(status, chart.get("error"), what)
    results = chart.get("result")
    if not isinstance(results, list) or not results or not isinstance(results[0], dict):
        raise MalformedResponseError(f"{what}: chart body without a result (HTTP {status})")
    if status >= 400:
        raise ProviderError(f"{what}: HTTP {status}")
    if not results[0].get("timestamp"):
        raise SymbolNotFoundError(f"{what}: no price data in the requested range (possibly delisted)")
    return doc


def _raise_chart_error(status: int, error: Any, what: str) -> None:
    if not error and status < 400:
        return
    error = error if isinstance(error, dict) else {}
    code, description = error.get("code", f"HTTP {status}"), error.get("description", "")
    if status == 404 or code == "Not Found":
        raise SymbolNotFoundError(f"{what}: unknown or delisted symbol ({description})")
    raise ProviderError(f"{what}: Yahoo rejected the request ({code}: {description})")


class YahooIngestor:
    source = Source.YFINANCE
    max_concurrency = 4

    def __init__(self, settings: ProviderSettings, layout: DataLayout) -> None:
        self.settings = settings
        self.layout = layout

    def _daily_params(self, symbol: str, start: dt.date | None, end: dt.date | None) -> dict[str, Any]:
        zone = exchange_zone(symbol)
        today = dt.datetime.now(zone).date()
        first = start or today.replace(year=today.year - 99, day=1)  # yfinance's period="max"
        period2 = local_midnight(end + dt.timedelta(days=1), zone) if end else int(time.time())
        return {
            "period1": local_midnight(first, zone),
            "period2": period2,
            "interval": "1d",
            "includePrePost": "false",
            "events": "div,splits",
        }

    @staticmethod
    def _intraday_params(interval: str) -> dict[str, Any]:
        canon = canonical_interval(interval)
        return {
            "range": INTRADAY_RANGE[canon],
            "interval": canon,
            "includePrePost": "false",
            "events": "div,splits",
        }

    def _url(self, symbol: str) -> str:
        return CHART_URL.format(symbol=provider_symbol(symbol, self.source))

    def plan_daily(self, symbol: str, start: dt.date | None, end: dt.date | None) -> list[PlannedRequest]:
        canon = validate_symbol(symbol)
        check_range(canon, start, end)
        return [
            PlannedRequest.redacted(
                self.source,
                canon,
                "daily",
                self._url(canon),
                self._daily_params(canon, start, end),
                self.settings.secrets(),
            )
        ]

    def plan_intraday(self, symbol: str, interval: str) -> list[PlannedRequest]:
        canon = validate_symbol(symbol)
        return [
            PlannedRequest.redacted(
                self.source,
                canon,
                intraday_kind(interval),
                self._url(canon),
                self._intraday_params(interval),
                self.settings.secrets(),
            )
        ]

    def fetch_daily(self, symbol: str, start: dt.date | None, end: dt.date | None) -> list[RawResponse]:
        canon = validate_symbol(symbol)
        check_range(canon, start, end)
        extra = {
            "interval": "1d",
            "requested_start": start.isoformat() if start else None,
            "requested_end": end.isoformat() if end else None,
        }
        return [self._fetch(canon, "daily", self._daily_params(canon, start, end), extra)]

    def fetch_intraday(self, symbol: str, interval: str) -> list[RawResponse]:
        canon = validate_symbol(symbol)
        params = self._intraday_params(interval)
        return [self._fetch(canon, intraday_kind(interval), params, {"interval": params["interval"]})]

    def _fetch(self, symbol: str, kind: str, params: dict[str, Any], extra: dict[str, Any]) -> RawResponse:
        url = self._url(symbol)
        what = f"yfinance {symbol}"
        data = _yf_data(self.settings, self.layout)
        holder: dict[str, Any] = {}

        def attempt() -> requests.Response:
            response = self._get(data, url, params, what)
            holder["doc"] = classify_chart(response.status_code, response.content, what)
            return response

        response = with_retries(attempt, self.settings, what)
        meta = holder["doc"]["chart"]["result"][0].get("meta") or {}
        info = {
            "format": RawFormat.YAHOO_CHART_JSON.value,
            "provider_symbol": provider_symbol(symbol, self.source),
            "exchange_timezone": meta.get("exchangeTimezoneName"),
            "currency": meta.get("currency"),
            **extra,
        }
        return RawResponse(
            source=self.source.value,
            symbol=symbol,
            body=response.content,
            ext="json",
            kind=kind,
            url=response.url or url,
            params=dict(params),
            http_status=response.status_code,
            content_type=response.headers.get("Content-Type"),
            extra=info,
        )

    def _get(self, data: Any, url: str, params: dict[str, Any], what: str) -> requests.Response:
        from yfinance.exceptions import YFRateLimitError

        try:
            return data.get(url, params=params, timeout=self.settings.timeout_s)
        except YFRateLimitError:
            raise RateLimitedError(f"{what}: Yahoo rate limit (HTTP 429 Too Many Requests)") from None
        except Exception as exc:  # noqa: BLE001 - yfinance raises requests' or curl_cffi's exceptions
            exc = _unmasked(exc)
            message = redact_text(f"{type(exc).__name__}: {exc}", self.settings.secrets())
            if type(exc).__name__ in _TRANSIENT_NAMES or isinstance(exc, (TimeoutError, ConnectionError)):
                raise TransientProviderError(f"{what}: {message}") from None
            raise ProviderError(f"{what}: request failed ({message})") from None


def _unmasked(exc: Exception) -> BaseException:
    """The real error behind yfinance's ``except requests.exceptions.DNSError`` (yfinance 1.7 on its
    plain-requests backend, which has no DNSError): evaluating that clause raises AttributeError
    while the connection error - refused, unreachable - is being handled; it is the context."""
    if isinstance(exc, AttributeError) and "DNSError" in str(exc) and exc.__context__ is not None:
        return exc.__context__
    return exc
