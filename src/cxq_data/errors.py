"""Exception hierarchy. Every error names the bad value (file, symbol, date) it is about."""

from __future__ import annotations


class CxqError(Exception):
    """Base class for every error cxq_data raises on purpose."""


class ConfigError(CxqError):
    """A setting, credential or command-line value is missing or invalid."""


class InvalidSymbolError(CxqError, ValueError):
    """A ticker is not plausible (path separators, NUL, spaces, too long ...)."""


class InvalidSourceError(CxqError, ValueError):
    """A source name is unknown or does not match ``[a-z0-9_]{1,32}``."""


class ProviderError(CxqError):
    """A provider answered with something that is not data (error body, HTML, quota ...)."""

    retryable: bool = False
    stop_source: bool = False  # True: do not ask this source again today (quota)


class RateLimitedError(ProviderError):
    """Too many requests (HTTP 429 or a burst message): retry after backing off."""

    retryable = True


class QuotaExhaustedError(ProviderError):
    """The daily quota is used up: stop the source for the day."""

    stop_source = True


class PremiumRequiredError(ProviderError):
    """The endpoint or parameter needs a paid plan."""


class InvalidApiKeyError(ProviderError):
    """The API key is missing or rejected."""

    stop_source = True


class SymbolNotFoundError(ProviderError):
    """The provider does not know the symbol (or has no data for the range)."""


class ChallengePageError(ProviderError):
    """The provider served an HTML page (api-key page, proof-of-work challenge) instead of data."""

    stop_source = True


class TransientProviderError(ProviderError):
    """5xx, timeout or dropped connection: worth retrying."""

    retryable = True


class MalformedResponseError(ProviderError):
    """The body could not be parsed (truncated JSON, unexpected CSV header ...)."""


class RawLayerError(CxqError):
    """A raw file or its manifest is missing, unreadable or fails its hash."""


class DataFormatError(CxqError, ValueError):
    """An input file (CSV, DBN, ZIP member) is not in the expected format."""


class StateFileError(CxqError):
    """A derived state file (a pair's ``_index.json``, a serving manifest) is damaged; the message
    says which command rebuilds it (nothing in it is primary data: raw files are)."""
