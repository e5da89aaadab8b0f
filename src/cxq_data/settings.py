"""Settings from the environment and ``.env`` (secrets never leave this module in clear text)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from cxq_data.errors import ConfigError

_N = TypeVar("_N", int, float)

_SECRET_KEYS = ("apikey", "api_key", "token", "secret", "password", "crumb", "aws_secret_access_key")
REDACTED = "***"


def load_dotenv_once(path: str | os.PathLike[str] | None = None) -> None:
    """Load ``.env`` from the working directory (values already in the environment win)."""
    if getattr(load_dotenv_once, "_done", False) and path is None:
        return
    try:
        from dotenv import load_dotenv
    except ImportError:  # pragma: no cover - dependency of the package
        return
    load_dotenv(dotenv_path=path or Path.cwd() / ".env", override=False)
    load_dotenv_once._done = True  # type: ignore[attr-defined]


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_number(name: str, default: _N, kind: type[_N], *, positive: bool = False) -> _N:
    """A numeric setting from the environment; a bad value is an error naming the variable (it was a
    ValueError traceback, or for a zero timeout an error on every request)."""
    text = os.environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not {'an integer' if kind is int else 'a number'}") from None
    if value < 0 or (positive and value == 0):
        raise ConfigError(f"{name}={text!r} must be {'> 0' if positive else '>= 0'}")
    return value


MIN_API_KEY_CHARS = 4  # Alpha Vantage's own "demo" key; real keys are 16 characters


def env_api_key(name: str) -> str | None:
    """An API key from the environment, or None. A key of a few characters is refused: secrets are
    redacted from every message and refused in every stored body, and "ab" occurs everywhere."""
    key = os.environ.get(name, "").strip()
    if key and len(key) < MIN_API_KEY_CHARS:
        raise ConfigError(f"{name} has {len(key)} character(s): too short to be an API key (check .env)")
    return key or None


@dataclass(frozen=True)
class ProviderSettings:
    """Base URLs and keys for the providers. Base URLs can point at the local simulator."""

    av_api_key: str | None = None
    av_premium: bool = False
    stooq_api_key: str | None = None
    yahoo_base_url: str | None = None  # None = the real Yahoo hosts
    av_base_url: str = "https://www.alphavantage.co"
    stooq_base_url: str = "https://stooq.com"
    timeout_s: float = 20.0
    max_retries: int = 4
    backoff_base_s: float = 1.0
    av_min_interval_s: float = 1.0  # Alpha Vantage burst limit: >= 1 s between requests (all processes)
    av_daily_limit: int = 25  # free-key requests per UTC day (premium keys: no cap)

    @classmethod
    def from_env(cls) -> ProviderSettings:
        load_dotenv_once()
        return cls(
            av_api_key=env_api_key("AV_API_KEY"),
            av_premium=env_flag("AV_PREMIUM"),
            stooq_api_key=env_api_key("STOOQ_API_KEY"),
            yahoo_base_url=os.environ.get("CXQ_YAHOO_BASE_URL") or None,
            av_base_url=os.environ.get("CXQ_AV_BASE_URL") or cls.av_base_url,
            stooq_base_url=os.environ.get("CXQ_STOOQ_BASE_URL") or cls.stooq_base_url,
            timeout_s=env_number("CXQ_HTTP_TIMEOUT", cls.timeout_s, float, positive=True),
            max_retries=env_number("CXQ_HTTP_RETRIES", cls.max_retries, int),
            backoff_base_s=env_number("CXQ_BACKOFF_BASE", cls.backoff_base_s, float),
            av_min_interval_s=env_number("CXQ_AV_MIN_INTERVAL", cls.av_min_interval_s, float),
            av_daily_limit=env_number("CXQ_AV_DAILY_LIMIT", cls.av_daily_limit, int),
        )

    def secrets(self) -> list[str]:
        return [s for s in (self.av_api_key, self.stooq_api_key) if s]


def redact_params(params: dict[str, object]) -> dict[str, object]:
    """Copy of request parameters with secret values replaced by ``***``."""
    return {k: (REDACTED if k.lower() in _SECRET_KEYS else v) for k, v in params.items()}


def redact_text(text: str, secrets: list[str] | None = None) -> str:
    """Remove secrets from a URL, message or log line (query params and known secret values)."""
    out = re.sub(r"(?i)((?:api_?key|token|crumb|secret)=)[^&\s\"']+", r"\1" + REDACTED, text)
    for secret in secrets or []:
        if secret:
            out = out.replace(secret, REDACTED)
    return out
