"""Provider failure bodies (verbatim formats from the provider research) and scripted faults.

A test scripts what the next requests for one (provider, symbol) get::

    sim.script("yahoo", "AAPL", [Fault.http(429), OK])          # 429, then the real data
    sim.script("alphavantage", "MSFT", [Fault.av("burst"), OK])  # AV burst message, then data
    sim.script("stooq", "AAPL", [Fault.stooq("pow_challenge")])  # HTML proof-of-work page

Each scripted entry answers one data request; when the script is used up, requests get data again.
"""

from __future__ import annotations

from dataclasses import dataclass

PROVIDERS = ("yahoo", "alphavantage", "stooq")
PROVIDER_ALIASES = {
    "yahoo": "yahoo",
    "yf": "yahoo",
    "yfinance": "yahoo",
    "av": "alphavantage",
    "alphavantage": "alphavantage",
    "stooq": "stooq",
}

_AV_PREMIUM_SITE = "https://www.alphavantage.co/premium/"
AV_BODIES: dict[str, str] = {
    "daily_quota": '{"Information":"Thank you for using Alpha Vantage! Our standard API rate limit is 25 '
    "requests per day. Please subscribe to any of the premium plans at "
    + _AV_PREMIUM_SITE
    + ' to instantly remove all daily rate limits."}',
    "burst": '{"Information":"Thank you for using Alpha Vantage! Please consider spreading out your free API '
    "requests more sparingly (1 request per second). You may subscribe to any of the premium plans at "
    + _AV_PREMIUM_SITE
    + " to lift the free key rate limit (25 requests per day), raise the per-second burst "
    'limit, and instantly unlock all premium endpoints"}',
    "premium_endpoint": '{"Information":"Thank you for using Alpha Vantage! This is a premium endpoint. You may '
    "subscribe to any of the premium plans at "
    + _AV_PREMIUM_SITE
    + ' to instantly unlock all premium endpoints"}',
    "premium_param": '{"Information":"Thank you for using Alpha Vantage! The outputsize=full parameter value is '
    "a premium feature for the TIME_SERIES_DAILY endpoint. You may subscribe to any of the premium plans at "
    + _AV_PREMIUM_SITE
    + ' to instantly unlock all premium features"}',
    "invalid_call": '{"Error Message":"Invalid API call. Please retry or visit the documentation '
    '(https://www.alphavantage.co/documentation/) for TIME_SERIES_DAILY."}',
    "bad_key": '{"Error Message":"the parameter apikey is invalid or missing. Please claim your free API key on '
    '(https://www.alphavantage.co/support/#api-key). It should take less than 20 seconds."}',
    "old_note": '{"Note":"Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per '
    "minute and 500 calls per day. Please visit https://www.alphavantage.co/premium/ if you would like to "
    'target a higher API call frequency."}',
}

STOOQ_APIKEY_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Stooq - get your apikey</title></head>
<body><div id="content"><h2>Data download requires an API key</h2>
<p>To download historical data in CSV format get your apikey: open
<a href="/q/d/?s={sym}&amp;get_apikey">https://stooq.com/q/d/?s={sym}&amp;get_apikey</a>,
rewrite the code shown in the picture and add <code>&amp;apikey=...</code> to the download link.</p>
<form method="post" action="/q/d/?s={sym}&amp;get_apikey"><img src="/q/l/captcha.png" alt="code">
<p>Rewrite the above code: <input name="code" size="8"> <input type="submit" value="OK"></p></form>
</div></body></html>
"""

STOOQ_POW_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Checking your browser...</title>
<script>
(async()=>{const c="8f3a1c2be4d5a6f7091827364554637281909a8b7c6d5e4f",d=4;let n=0;
const enc=new TextEncoder();
while(true){const h=await crypto.subtle.digest("SHA-256",enc.encode(c+n));
const hex=[...new Uint8Array(h)].map(b=>b.toString(16).padStart(2,"0")).join("");
if(hex.startsWith("0".repeat(d))){break}n++}
await fetch("/__verify",{method:"POST",headers:{"Content-Type":"application/x-www-form-urlencoded"},
body:"c="+c+"&n="+n});location.reload();})();
</script></head><body><noscript>Please enable JavaScript to continue.</noscript>
<p>Checking your browser before accessing stooq.com ...</p></body></html>
"""

STOOQ_BODIES: dict[str, str] = {
    "no_data": "No data",
    "limit": "Exceeded the daily hits limit",
    "apikey_page": STOOQ_APIKEY_PAGE,
    "pow_challenge": STOOQ_POW_PAGE,
}

YAHOO_OUTAGE_PAGE = """<!DOCTYPE html><html><head><title>Yahoo</title></head><body>
<div class="oops"><h1>Will be right back...</h1><p>Thank you for your patience.</p>
<p>Our engineers are working quickly to resolve the issue.</p></div></body></html>
"""


def yahoo_error_body(status: int, description: str | None = None) -> str:
    code, default = {
        404: ("Not Found", "No data found, symbol may be delisted"),
        422: (
            "Unprocessable Entity",
            (
                "5m data not available for startTime=1770111238 and endTime=1770975238. "
                "The requested range must be within the last 60 days."
            ),
        ),
        400: (
            "Bad Request",
            (
                "Invalid input - interval=7m is not supported. Valid intervals: "
                "[1m, 2m, 5m, 15m, 30m, 60m, 90m, 1h, 4h, 1d, 5d, 1wk, 1mo, 3mo]"
            ),
        ),
    }.get(status, ("Error", "error"))
    import json

    return json.dumps(
        {"chart": {"result": None, "error": {"code": code, "description": description or default}}},
        separators=(",", ":"),
    )


@dataclass(frozen=True)
class Fault:
    """One scripted answer. ``kind``: ok | http | body | timeout | truncated | html | empty.

    ``payload`` is the body text of ``http``/``body`` faults (None: the provider's own body).
    """

    kind: str
    status: int = 200
    payload: str | None = None
    content_type: str = "text/plain; charset=utf-8"
    delay_s: float = 0.0

    @classmethod
    def ok(cls) -> Fault:
        return cls("ok")

    @classmethod
    def http(cls, status: int, body: str | None = None, content_type: str | None = None) -> Fault:
        """An HTTP error status; ``body=None`` uses the provider's own body for that status."""
        return cls("http", status, body, content_type or "text/plain; charset=utf-8")

    @classmethod
    def body(cls, body: str, status: int = 200, content_type: str = "text/plain; charset=utf-8") -> Fault:
        return cls("body", status, body, content_type)

    @classmethod
    def timeout(cls, delay_s: float = 2.0) -> Fault:
        """Sleep ``delay_s`` before answering normally (longer than the client's timeout)."""
        return cls("timeout", delay_s=delay_s)

    @classmethod
    def truncated(cls) -> Fault:
        """The real body cut in half (a dropped connection that still returned 200)."""
        return cls("truncated")

    @classmethod
    def html(cls) -> Fault:
        """An HTML page instead of data: Yahoo outage page, Stooq proof-of-work page, AV HTML error."""
        return cls("html")

    @classmethod
    def empty(cls) -> Fault:
        """A well-formed answer without rows."""
        return cls("empty")

    @classmethod
    def av(cls, name: str) -> Fault:
        """An Alpha Vantage HTTP-200 message body by name (see ``AV_BODIES``)."""
        return cls("body", 200, AV_BODIES[name], "application/json")

    @classmethod
    def stooq(cls, name: str) -> Fault:
        """A Stooq HTTP-200 failure body by name (see ``STOOQ_BODIES``)."""
        ctype = "text/html; charset=utf-8" if name in ("apikey_page", "pow_challenge") else "text/plain"
        return cls("body", 200, STOOQ_BODIES[name], ctype)


OK = Fault.ok()
