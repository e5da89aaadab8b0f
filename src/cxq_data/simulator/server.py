"""The provider simulator: one local HTTP server speaking Yahoo's, Alpha Vantage's and Stooq's formats.

Routes (the ingestors reach them through ``CXQ_YAHOO_BASE_URL`` / ``CXQ_AV_BASE_URL`` /
``CXQ_STOOQ_BASE_URL``; the Yahoo session rewrites Yahoo's hosts onto the base URL):

    GET /v8/finance/chart/{SYM}   Yahoo chart v8 (period1/period2 or range, interval, events)
    GET /v1/test/getcrumb         Yahoo crumb (text)
    GET /                         fc.yahoo.com cookie stub (404 + Set-Cookie A3, like Yahoo)
    GET /query                    Alpha Vantage (daily, daily adjusted, intraday, error bodies)
    GET /q/d/l/                   Stooq CSV download (CSV or one of its failure bodies)

Every request is recorded (:attr:`ProviderSimulator.requests`) so a test can assert that a bad
symbol never reached the server. Faults are scripted per (provider, symbol), see ``faults``.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, unquote, urlsplit

from cxq_data.simulator import sample
from cxq_data.simulator.faults import (
    PROVIDER_ALIASES,
    STOOQ_BODIES,
    YAHOO_OUTAGE_PAGE,
    Fault,
    yahoo_error_body,
)
from cxq_data.simulator.render_av_stooq import alphavantage, stooq
from cxq_data.simulator.render_yahoo import Reply, chart

CRUMB = "sImCrUmB0123"
CHART_PREFIX = "/v8/finance/chart/"


@dataclass(frozen=True)
class RecordedRequest:
    provider: str | None  # yahoo | alphavantage | stooq | None (crumb, cookie, unknown path)
    path: str
    params: dict[str, str]
    symbol: str | None  # canonical sample symbol, or the provider spelling when unknown
    at: float


def _symbol_maps() -> dict[str, dict[str, str]]:
    from cxq_data.sources import Source
    from cxq_data.symbols import provider_symbol

    sources = {"yahoo": Source.YFINANCE, "alphavantage": Source.ALPHAVANTAGE, "stooq": Source.STOOQ}
    return {
        name: {provider_symbol(s, src).upper(): s for s in sample.sample_symbols(name)}
        for name, src in sources.items()
    }


class ProviderSimulator:
    """Local provider server; use as a context manager. ``port=0`` picks a free port."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        av_daily_limit: int | None = None,
        av_burst_interval_s: float = 0.0,
    ) -> None:
        self._address = (host, port)
        self.av_daily_limit = av_daily_limit
        self.av_burst_interval_s = av_burst_interval_s
        self.requests: list[RecordedRequest] = []
        self._scripts: dict[tuple[str, str], deque[Fault]] = defaultdict(deque)
        self._tz_override: dict[str, str] = {}
        self._av_counts: dict[str, int] = defaultdict(int)
        self._av_last: dict[str, float] = {}
        self._lock = threading.Lock()
        self._symbols = _symbol_maps()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---
    def start(self) -> ProviderSimulator:
        for symbol in sample.SYMBOLS:  # build the sample now, not inside the first (timed) request
            sample.true_bars(symbol)
        handler = type("Handler", (_Handler,), {"sim": self})
        self._server = ThreadingHTTPServer(self._address, handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="provider-simulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("simulator not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self) -> dict[str, str]:
        """Environment that points every ingestor at this simulator."""
        return {
            "CXQ_YAHOO_BASE_URL": self.base_url,
            "CXQ_AV_BASE_URL": self.base_url,
            "CXQ_STOOQ_BASE_URL": self.base_url,
        }

    # --- test controls ---
    def script(self, provider: str, symbol: str, faults: Iterable[Fault]) -> None:
        """Queue the answers of the next data requests for (provider, symbol)."""
        with self._lock:
            self._scripts[(PROVIDER_ALIASES[provider], symbol.upper())].extend(faults)

    def set_exchange_timezone(self, symbol: str, zone: str) -> None:
        """Report ``zone`` as ``meta.exchangeTimezoneName`` for ``symbol`` (timestamps unchanged)."""
        self._tz_override[symbol.upper()] = zone

    def data_requests(self, provider: str | None = None, symbol: str | None = None) -> list[RecordedRequest]:
        with self._lock:
            return [
                r
                for r in self.requests
                if r.provider is not None
                and (provider is None or r.provider == PROVIDER_ALIASES[provider])
                and (symbol is None or r.symbol == symbol)
            ]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self._scripts.clear()
            self._av_counts.clear()
            self._av_last.clear()

    # --- request handling (called from handler threads) ---
    def handle(self, path: str, params: dict[str, str]) -> tuple[Reply, Fault]:
        provider, raw_symbol = _route(path, params)
        symbol = self._symbols[provider].get(raw_symbol.upper()) if provider else None
        with self._lock:
            self.requests.append(
                RecordedRequest(provider, path, dict(params), symbol or raw_symbol, time.time())
            )
            queue = self._scripts.get((provider or "", (symbol or raw_symbol).upper()))
            fault = queue.popleft() if queue else Fault.ok()
        if provider is None:
            return _auxiliary(path), fault
        if fault.kind in ("http", "body"):
            return _fault_reply(provider, fault), fault
        if fault.kind == "html":
            return _html_reply(provider), fault
        empty = fault.kind == "empty"
        if provider == "yahoo":
            reply = (
                chart(symbol, params, self._tz_override.get(symbol or ""), empty)
                if symbol
                else Reply(404, "application/json;charset=utf-8", _yahoo_404())
            )
        elif provider == "alphavantage":
            reply = self._av_quota(params) or alphavantage(symbol, params, empty)
        else:
            reply = stooq(symbol, params, empty)
        if fault.kind == "truncated":
            reply = Reply(reply.status, reply.content_type, reply.body[: len(reply.body) // 2])
        return reply, fault

    def _av_quota(self, params: dict[str, str]) -> Reply | None:
        from cxq_data.simulator.render_av_stooq import av_message, is_premium_key

        key = params.get("apikey", "")
        if not key or is_premium_key(key):
            return None
        with self._lock:
            now = time.time()
            last = self._av_last.get(key)
            self._av_last[key] = now
            if self.av_burst_interval_s and last is not None and now - last < self.av_burst_interval_s:
                return av_message("burst")
            self._av_counts[key] += 1
            if self.av_daily_limit is not None and self._av_counts[key] > self.av_daily_limit:
                return av_message("daily_quota")
        return None


def _route(path: str, params: dict[str, str]) -> tuple[str | None, str]:
    if path.startswith(CHART_PREFIX):
        return "yahoo", unquote(path[len(CHART_PREFIX) :])
    if path == "/query":
        return "alphavantage", params.get("symbol", "")
    if path.rstrip("/") == "/q/d/l":
        return "stooq", params.get("s", "")
    return None, ""


def _auxiliary(path: str) -> Reply:
    if path.endswith("/v1/test/getcrumb"):
        return Reply(200, "text/plain;charset=utf-8", CRUMB.encode())
    return Reply(404, "text/html; charset=utf-8", b"<html><body>Not Found</body></html>")


def _yahoo_404() -> bytes:
    return yahoo_error_body(404).encode()


def _fault_reply(provider: str, fault: Fault) -> Reply:
    if fault.payload is not None:
        return Reply(fault.status, fault.content_type, fault.payload.encode())
    if provider == "yahoo" and fault.status in (400, 404, 422):
        return Reply(fault.status, "application/json;charset=utf-8", yahoo_error_body(fault.status).encode())
    if fault.status == 429:
        return Reply(429, "text/plain", b"Too Many Requests\r\n")
    return Reply(
        fault.status, "text/html", f"<html><body><h1>{fault.status} Server Error</h1></body></html>".encode()
    )


def _html_reply(provider: str) -> Reply:
    if provider == "yahoo":
        return Reply(200, "text/html; charset=utf-8", YAHOO_OUTAGE_PAGE.encode())
    if provider == "stooq":
        return Reply(200, "text/html; charset=utf-8", STOOQ_BODIES["pow_challenge"].encode())
    return Reply(200, "text/html; charset=utf-8", b"<html><body><h1>502 Bad Gateway</h1></body></html>")


class _Handler(BaseHTTPRequestHandler):
    sim: ProviderSimulator
    server_version = "cxq-provider-simulator/1.0"

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        reply, fault = self.sim.handle(parts.path, params)
        if fault.kind == "timeout":
            time.sleep(fault.delay_s)
        self._send(reply, parts.path)

    def do_POST(self) -> None:
        self._send(Reply(404, "text/html", b"<html><body>Not Found</body></html>"), self.path)

    def _send(self, reply: Reply, path: str) -> None:
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            if path == "/":
                self.send_header("Set-Cookie", "A3=d=AQABBsimulator&S=AQAAAsim; Max-Age=31557600; Path=/")
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and went away
            pass

    def log_message(self, format: str, *args: Any) -> None:
        return
