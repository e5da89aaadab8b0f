"""Canonical ticker symbols, their validation and their spelling at each provider.

The canonical form is upper case with a dot for share classes (``BRK.B``; ``BRK-B`` and ``brk-b`` are
read as ``BRK.B``) and a dot plus a known exchange code for non-US listings (``AET.L``, ``MOB.ST``). Validation happens before a symbol
reaches a path or a URL: anything with a path separator, NUL, whitespace or other odd characters is
refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from cxq_data.errors import InvalidSymbolError
from cxq_data.sources import Source

# Letters, digits, one dot/dash separated class or exchange part, optional leading ^ for indices.
_SYMBOL_RE = re.compile(r"^\^?[A-Z0-9]{1,12}(?:[.\-][A-Z0-9]{1,6}){0,2}$")
MAX_SYMBOL_LEN = 20

# Yahoo exchange suffix -> exchange_calendars code. A final ".XX" in this table names an exchange.
EXCHANGE_SUFFIXES: dict[str, str] = {
    "L": "XLON", "DE": "XETR", "F": "XFRA", "ST": "XSTO", "HK": "XHKG", "T": "XTKS", "PA": "XPAR",
    "MI": "XMIL", "TO": "XTSE", "V": "XTSX", "AX": "XASX", "AS": "XAMS", "BR": "XBRU", "SW": "XSWX",
    "MC": "XMAD", "CO": "XCSE", "OL": "XOSL", "HE": "XHEL", "IR": "XDUB", "LS": "XLIS", "VI": "XWBO",
    "NZ": "XNZE", "KS": "XKRX", "SS": "XSHG", "SZ": "XSHE", "SI": "XSES", "JO": "XJSE", "SA": "BVMF",
    "MX": "XMEX", "WA": "XWAR", "NS": "XNSE", "BO": "XBOM", "TW": "XTAI",
}
DEFAULT_EXCHANGE = "XNYS"

# Stooq country suffixes for the exchange codes it covers.
_STOOQ_COUNTRY = {"L": "uk", "DE": "de", "F": "de", "HK": "hk", "T": "jp", "WA": "pl"}
# Alpha Vantage exchange suffixes.
_AV_EXCHANGE = {"L": "LON", "TO": "TRT", "V": "TRV", "DE": "DEX", "F": "FRK", "SS": "SHH", "SZ": "SHZ",
                "BO": "BSE", "NS": "NSE"}


@dataclass(frozen=True)
class Symbol:
    """A validated canonical symbol split into its base and optional exchange suffix."""

    canonical: str
    base: str
    exchange_suffix: str | None

    @property
    def exchange(self) -> str:
        """exchange_calendars code of the listing (default NYSE for US symbols)."""
        return EXCHANGE_SUFFIXES.get(self.exchange_suffix or "", DEFAULT_EXCHANGE)

    def __str__(self) -> str:
        return self.canonical


def validate_symbol(raw: str) -> str:
    """Return the canonical upper-case symbol or raise ``InvalidSymbolError`` naming it."""
    if not isinstance(raw, str):
        raise InvalidSymbolError(f"symbol must be a string, got {type(raw).__name__}")
    text = raw.strip()
    if not text or len(text) > MAX_SYMBOL_LEN or any(c in text for c in "/\\\x00") or ".." in text:
        raise InvalidSymbolError(f"invalid symbol {raw!r}: not a plausible ticker")
    # A dash is a provider's spelling of the class separator (Yahoo BRK-B, Stooq brk-b.us): one
    # instrument must be one symbol in the lake, whichever way it was typed.
    canon = text.upper().replace("-", ".")
    if not _SYMBOL_RE.match(canon):
        raise InvalidSymbolError(
            f"invalid symbol {raw!r}: use letters, digits and one '.' or '-' part (e.g. AAPL, BRK.B, AET.L)"
        )
    return canon


def parse_symbol(raw: str) -> Symbol:
    canon = validate_symbol(raw)
    base, _, tail = canon.rpartition(".")
    if base and tail in EXCHANGE_SUFFIXES:
        return Symbol(canon, base, tail)
    return Symbol(canon, canon, None)


def parse_symbol_list(value: str) -> list[str]:
    """``"aapl, msft"`` -> ``["AAPL", "MSFT"]`` (deduplicated, order kept)."""
    out = [validate_symbol(part) for part in value.split(",") if part.strip()]
    if not out:
        raise InvalidSymbolError("no symbols given")
    return list(dict.fromkeys(out))


def provider_symbol(symbol: str, source: Source) -> str:
    """Spell a canonical symbol the way ``source`` expects it in a request."""
    sym = parse_symbol(symbol)
    if source is Source.YFINANCE:
        base = sym.base.replace(".", "-")  # BRK.B -> BRK-B
        return f"{base}.{sym.exchange_suffix}" if sym.exchange_suffix else base
    if source is Source.ALPHAVANTAGE:
        av = _AV_EXCHANGE.get(sym.exchange_suffix or "")
        return f"{sym.base}.{av}" if av else sym.base
    if source is Source.STOOQ:
        if sym.base.startswith("^"):
            return sym.base.lower()
        base = sym.base.replace(".", "-").lower()  # BRK.B -> brk-b
        country = _STOOQ_COUNTRY.get(sym.exchange_suffix or "", "us")
        return f"{base}.{country}"
    raise ValueError(f"no symbol mapping for source {source!r}")


def from_stooq_ticker(ticker: str) -> str:
    """``AAPL.US`` / ``brk-b.us`` (Stooq bulk files) -> canonical ``AAPL`` / ``BRK.B``."""
    text = ticker.strip().upper()
    base, _, country = text.rpartition(".")
    if not base:
        return validate_symbol(text.replace("-", "."))
    reverse = {v.upper(): k for k, v in _STOOQ_COUNTRY.items()}
    base = base.replace("-", ".")
    if country == "US":
        return validate_symbol(base)
    suffix = reverse.get(country)
    return validate_symbol(f"{base}.{suffix}" if suffix else base)
