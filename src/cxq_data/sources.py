"""Source names: the three built-in providers and user-named file sources.

Long names (``yfinance``, ``alphavantage``, ``stooq``) are used on disk, in columns and in JSON;
short keys (``yf``, ``av``) are accepted everywhere as aliases.
"""

from __future__ import annotations

import re
from enum import Enum

from cxq_data.errors import InvalidSourceError

_USER_SOURCE_RE = re.compile(r"^[a-z0-9_]{1,32}$")


class Source(str, Enum):
    YFINANCE = "yfinance"
    ALPHAVANTAGE = "alphavantage"
    STOOQ = "stooq"

    def __str__(self) -> str:  # click and f-strings print the long name
        return self.value


ALIASES: dict[str, Source] = {
    "yf": Source.YFINANCE,
    "yahoo": Source.YFINANCE,
    "yfinance": Source.YFINANCE,
    "av": Source.ALPHAVANTAGE,
    "alphavantage": Source.ALPHAVANTAGE,
    "alpha_vantage": Source.ALPHAVANTAGE,
    "stooq": Source.STOOQ,
}


def provider_source(name: str) -> Source:
    """Resolve a built-in provider from its long name or alias; raise for anything else."""
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key]
    known = ", ".join(sorted(ALIASES))
    raise InvalidSourceError(f"unknown provider {name!r}; expected one of: {known}")


def source_name(name: str) -> str:
    """Canonical long name of any source: a provider alias or a user source ``[a-z0-9_]{1,32}``."""
    key = name.strip().lower()
    if key in ALIASES:
        return ALIASES[key].value
    if not _USER_SOURCE_RE.match(key):
        raise InvalidSourceError(f"invalid source name {name!r}: use 1-32 characters of a-z, 0-9 and _")
    return key


def parse_source_list(value: str | None) -> list[str] | None:
    """``"yf,stooq"`` -> ``["yfinance", "stooq"]``; None stays None (all sources)."""
    if value is None or not value.strip():
        return None
    names = [source_name(part) for part in value.split(",") if part.strip()]
    return list(dict.fromkeys(names))
