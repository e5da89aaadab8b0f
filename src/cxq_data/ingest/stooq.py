"""Stooq ingestor: ``/q/d/l/?s=aapl.us&i=d&d1=YYYYMMDD&d2=YYYYMMDD&apikey=KEY`` over requests.

Stooq answers failures with HTTP 200 too. The first non-empty line must start with ``Date,`` (or the
Polish ``Data,``); otherwise :func:`classify_stooq_body` names the failure. Since 2026 Stooq often
serves an API-key page or a JavaScript proof-of-work page to non-browser clients; then the way
forward is a manual download and ``cxq_data ingest import --source stooq PATH``, and the error says so.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests

from cxq_data.errors import (
    ChallengePageError,
    ConfigError,
    MalformedResponseError,
    QuotaExhaustedError,
    SymbolNotFoundError,
)
from cxq_data.ingest.base import PlannedRequest, check_range
from cxq_data.ingest.http import http_get, new_session, with_retries
from cxq_data.normalize.base import RawFormat
from cxq_data.paths import DataLayout
from cxq_data.raw import RawResponse
from cxq_data.settings import ProviderSettings, redact_params
from cxq_data.sources import Source
from cxq_data.symbols import provider_symbol, validate_symbol

_HEADERS = ("Date,", "Data,")


def _manual_hint(symbol: str, stooq_symbol: str) -> str:
    return (
        f"download https://stooq.com/q/d/l/?s={stooq_symbol}&i=d in a browser and run "
        f"`cxq_data ingest import --source stooq PATH --symbol {symbol}`"
    )


def first_line(body: bytes) -> str:
    for line in body[:4096].decode("utf-8-sig", errors="replace").splitlines():
        if line.strip():
            return line.strip()
    return ""


def classify_stooq_body(body: bytes, symbol: str, stooq_symbol: str) -> None:
    """Return when ``body`` is a Stooq CSV; else raise the matching provider error."""
    line = first_line(body)
    what = f"stooq {symbol} ({stooq_symbol})"
    if line.startswith(_HEADERS):
        _check_csv_shape(body, line, what)
        return
    text = body[:65536].decode("utf-8", errors="replace")
    if line.startswith("No data"):
        raise SymbolNotFoundError(f"{what}: Stooq has no data for this symbol or date range")
    if "Exceeded the daily hits limit" in text:
        raise QuotaExhaustedError(
            f"{what}: Stooq's daily hits limit is exceeded; try tomorrow or "
            + _manual_hint(symbol, stooq_symbol)
        )
    if line.startswith("<") or "<html" in text.lower():
        if "apikey" in text.lower():
            kind = (
                "an API-key page (set STOOQ_API_KEY, obtained at https://stooq.com/q/d/?s=spy.us&get_apikey)"
            )
        elif "__verify" in text or "crypto.subtle" in text or "Checking your browser" in text:
            kind = "a proof-of-work browser challenge"
        else:
            kind = "an HTML page"
        raise ChallengePageError(
            f"{what}: Stooq served {kind} instead of CSV; " + _manual_hint(symbol, stooq_symbol)
        )
    raise MalformedResponseError(f"{what}: not a Stooq CSV (first line {line[:60]!r})")


def _check_csv_shape(body: bytes, header: str, what: str) -> None:
    """Every row has the header's field count (a body cut mid-line fails here, not in the lake)."""
    lines = [x for x in body.decode("utf-8-sig", errors="replace").splitlines() if x.strip()]
    if len(lines) < 2:
        raise SymbolNotFoundError(f"{what}: the CSV has a header but no rows")
    width = header.count(",")
    for number, text in enumerate(lines[1:], start=2):
        if text.count(",") != width or text.rstrip().endswith(","):
            raise MalformedResponseError(
                f"{what}: line {number} has the wrong number of fields (truncated download?): {text[:60]!r}"
            )


class StooqIngestor:
    source = Source.STOOQ
    max_concurrency = 2

    def __init__(
        self, settings: ProviderSettings, layout: DataLayout, session: requests.Session | None = None
    ) -> None:
        self.settings = settings
        self.layout = layout
        self._session = session or new_session()
        self._url = settings.stooq_base_url.rstrip("/") + "/q/d/l/"

    def _params(self, symbol: str, start: dt.date | None, end: dt.date | None) -> dict[str, Any]:
        params: dict[str, Any] = {"s": provider_symbol(symbol, self.source), "i": "d"}
        if start:
            params["d1"] = start.strftime("%Y%m%d")
        if end:
            params["d2"] = end.strftime("%Y%m%d")
        if self.settings.stooq_api_key:
            params["apikey"] = self.settings.stooq_api_key
        return params

    def plan_daily(self, symbol: str, start: dt.date | None, end: dt.date | None) -> list[PlannedRequest]:
        canon = validate_symbol(symbol)
        check_range(canon, start, end)
        return [
            PlannedRequest.redacted(
                self.source,
                canon,
                "daily",
                self._url,
                self._params(canon, start, end),
                self.settings.secrets(),
            )
        ]

    def plan_intraday(self, symbol: str, interval: str) -> list[PlannedRequest]:
        raise ConfigError("stooq: intraday downloads are not supported; use yfinance or alphavantage")

    def fetch_intraday(self, symbol: str, interval: str) -> list[RawResponse]:
        raise ConfigError("stooq: intraday downloads are not supported; use yfinance or alphavantage")

    def fetch_daily(self, symbol: str, start: dt.date | None, end: dt.date | None) -> list[RawResponse]:
        canon = validate_symbol(symbol)
        check_range(canon, start, end)
        params = self._params(canon, start, end)
        what = f"stooq {canon}"

        def attempt() -> requests.Response:
            response = http_get(self._session, self._url, params, self.settings, what)
            classify_stooq_body(response.content, canon, params["s"])
            return response

        response = with_retries(attempt, self.settings, what)
        extra = {
            "format": RawFormat.STOOQ_CSV.value,
            "provider_symbol": params["s"],
            "interval": "1d",
            "requested_start": start.isoformat() if start else None,
            "requested_end": end.isoformat() if end else None,
        }
        return [
            RawResponse(
                source=self.source.value,
                symbol=canon,
                body=response.content,
                ext="csv",
                kind="daily",
                url=self._url,
                params=redact_params(params),
                http_status=response.status_code,
                content_type=response.headers.get("Content-Type"),
                extra=extra,
            )
        ]
