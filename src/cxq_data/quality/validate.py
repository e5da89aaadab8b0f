"""Run every data-quality check: on frames (pure) or on the lake (``validate_symbols``).

Config keys (all optional; ``make validate`` passes ``default_exchange`` from config.yaml):

    default_exchange   exchange_calendars code for symbols without a suffix (default XNYS)
    exchanges          {symbol: code} overrides
    stale_sessions     identical OHLC for this many bars -> stale_price (5)
    return_threshold   |daily return| beyond this -> return_outlier (0.4)
    split_basis        {source: as_traded|split_adjusted}; default: stooq split_adjusted, others inferred
    disabled_checks    check names to skip
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cxq_data.errors import ConfigError
from cxq_data.quality.checks_bars import (
    BarRules,
    check_duplicates,
    check_negative_volume,
    check_non_positive,
    check_null_price,
    check_ohlc,
    check_return_outlier,
    check_stale,
    check_zero_volume,
)
from cxq_data.quality.dividends import check_dividend_adjustment
from cxq_data.quality.findings import Check, Finding, Issue, sort_findings, to_findings
from cxq_data.quality.frames import prepare_actions, prepare_series
from cxq_data.quality.history import Fetch, check_fetch_duplicates, check_restated
from cxq_data.quality.jumps import check_price_unit_jump, check_unadjusted_split
from cxq_data.quality.sessions import check_exchange, check_sessions, exchange_for
from cxq_data.symbols import DEFAULT_EXCHANGE

if TYPE_CHECKING:
    import datetime as dt

    import pandas as pd

    from cxq_data.paths import DataLayout

DEFAULT_SPLIT_BASIS = {"stooq": "split_adjusted"}
# Checks whose findings explain a big return; return_outlier stays quiet on those dates.
_EXPLAINS_RETURN = (Check.PRICE_UNIT_JUMP, Check.UNADJUSTED_SPLIT)


@dataclass(frozen=True)
class ValidationConfig:
    default_exchange: str = DEFAULT_EXCHANGE
    exchanges: Mapping[str, str] = field(default_factory=dict)
    rules: BarRules = field(default_factory=BarRules)
    split_basis: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_SPLIT_BASIS))
    disabled_checks: frozenset[Check] = frozenset()

    @classmethod
    def from_mapping(cls, config: Mapping[str, Any] | None) -> ValidationConfig:
        config = dict(config or {})
        rules = BarRules(
            stale_sessions=int(config.get("stale_sessions", BarRules.stale_sessions)),
            return_threshold=float(config.get("return_threshold", BarRules.return_threshold)),
        )
        exchanges = {symbol: check_exchange(str(code), f"exchanges.{symbol}")
                     for symbol, code in dict(config.get("exchanges") or {}).items()}
        return cls(
            default_exchange=check_exchange(str(config.get("default_exchange") or DEFAULT_EXCHANGE)),
            exchanges=exchanges,
            rules=rules,
            split_basis={**DEFAULT_SPLIT_BASIS, **dict(config.get("split_basis") or {})},
            disabled_checks=frozenset(Check(c) for c in config.get("disabled_checks") or ()),
        )

    def exchange(self, symbol: str) -> str:
        return self.exchanges.get(symbol) or exchange_for(symbol, self.default_exchange)

    def enabled(self, check: Check) -> bool:
        return check not in self.disabled_checks


def series_issues(series: pd.DataFrame, actions: pd.DataFrame | None, exchange: str,
                  config: ValidationConfig = ValidationConfig(), split_basis: str = "unknown") -> list[Issue]:
    """Every enabled frame check on one series (raw-layer checks excluded)."""
    series = prepare_series(series)
    actions = prepare_actions(actions)
    unique = series.drop_duplicates("date", keep="last").reset_index(drop=True)
    rules = config.rules
    runs = {
        Check.NULL_PRICE: lambda: check_null_price(series),
        Check.NON_POSITIVE_PRICE: lambda: check_non_positive(series),
        Check.NEGATIVE_VOLUME: lambda: check_negative_volume(series),
        Check.OHLC_INCONSISTENT: lambda: check_ohlc(series),
        Check.DUPLICATE_DATE: lambda: check_duplicates(series),
        Check.MISSING_SESSION: lambda: check_sessions(unique, exchange),  # also extra_session
        Check.ZERO_VOLUME: lambda: check_zero_volume(unique, rules),
        Check.STALE_PRICE: lambda: check_stale(unique, rules),
        Check.PRICE_UNIT_JUMP: lambda: check_price_unit_jump(unique, actions),
        Check.UNADJUSTED_SPLIT: lambda: check_unadjusted_split(unique, actions, split_basis),
        Check.DIVIDEND_ADJUSTMENT: lambda: check_dividend_adjustment(unique, actions),
    }
    issues: list[Issue] = []
    for check, run in runs.items():
        if check is Check.MISSING_SESSION and not (config.enabled(check) or config.enabled(Check.EXTRA_SESSION)):
            continue
        if check is Check.MISSING_SESSION or config.enabled(check):
            issues += run()
    issues = [i for i in issues if config.enabled(i.check)]
    if config.enabled(Check.RETURN_OUTLIER):
        explained = {i.date for i in issues if i.check in _EXPLAINS_RETURN}
        issues += check_return_outlier(unique, actions, rules, explained)
    return issues


def history_issues(fetches: list[Fetch], config: ValidationConfig = ValidationConfig()) -> list[Issue]:
    issues: list[Issue] = []
    if config.enabled(Check.DUPLICATE_DATE):
        issues += check_fetch_duplicates(fetches)
    if config.enabled(Check.RESTATED_HISTORY):
        issues += check_restated(fetches)
    return issues


def validate_frames(symbol: str, source: str, series: pd.DataFrame, actions: pd.DataFrame | None = None,
                    config: Mapping[str, Any] | ValidationConfig | None = None,
                    fetches: list[Fetch] | None = None) -> list[Finding]:
    """All checks on in-memory frames of one symbol/source; ``fetches`` enables the raw-layer checks."""
    cfg = config if isinstance(config, ValidationConfig) else ValidationConfig.from_mapping(config)
    basis = cfg.split_basis.get(source, "unknown")
    issues = series_issues(series, actions, cfg.exchange(symbol), cfg, basis)
    issues += history_issues(fetches or [], cfg)
    return sort_findings(to_findings(issues, symbol, source))


def _in_range(findings: Iterable[Finding], start: dt.date | None, end: dt.date | None) -> list[Finding]:
    return [f for f in findings if f.date is None or ((start is None or f.date >= start) and (end is None or f.date <= end))]


def validate_symbols(layout: DataLayout, symbols: list[str], sources: list[str] | None = None,
                     start: dt.date | None = None, end: dt.date | None = None,
                     config: Mapping[str, Any] | None = None) -> list[Finding]:
    """Validate every (symbol, source) in the lake; findings sorted by symbol, source, date, check.

    The checks see the whole stored history (a jump needs its neighbours); ``start``/``end`` only
    filter the findings that are reported. A symbol without any data (from ``sources``) is an error
    once the others are validated (:class:`NoDataError` carries their findings): "no findings" must
    not be what a typo prints.
    """
    from cxq_data.quality.loader import load_fetches, load_frames

    if start and end and start > end:
        raise ConfigError(f"start {start} is after end {end}")
    cfg = ValidationConfig.from_mapping(config)
    findings: list[Finding] = []
    missing = []
    for symbol in symbols:
        frames = load_frames(layout, symbol, sources)
        if not frames:
            missing.append(symbol)
        for source, (series, actions) in frames.items():
            fetches = load_fetches(layout, symbol, source)
            findings += validate_frames(symbol, source, series, actions, cfg, fetches)
    findings = sort_findings(_in_range(findings, start, end))
    if missing:
        where = f" from {', '.join(sources)}" if sources else ""
        raise NoDataError(f"no data in the lake for {', '.join(missing)}{where} (see `cxq_data lake summary`)",
                          findings)
    return findings


class NoDataError(ConfigError):
    """Some symbols have no data; ``findings`` holds those of the others."""

    def __init__(self, message: str, findings: list[Finding]) -> None:
        super().__init__(message)
        self.findings = findings
