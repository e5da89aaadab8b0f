"""``cxq_data ingest daily`` and ``cxq_data ingest intraday``: thin wrappers over ``run_ingest``."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from cxq_data.cli import fail, layout_of
from cxq_data.formatting import render

SOURCE_CHOICES = ["yf", "yfinance", "av", "alphavantage", "stooq"]


def _date(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date (use YYYY-MM-DD)") from None


def _symbols(ctx: click.Context, param: click.Parameter, value: str) -> list[str]:
    # Split only: each symbol is validated per symbol by the runner, so one bad name fails alone.
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise click.BadParameter("no symbols given")
    return names


def _common(func: Any) -> Any:
    options = [
        click.option(
            "--source",
            required=True,
            type=click.Choice(SOURCE_CHOICES, case_sensitive=False),
            help="Provider (short or long name).",
        ),
        click.option(
            "--symbols",
            required=True,
            callback=_symbols,
            help="Comma-separated tickers, e.g. AAPL,MSFT,BRK.B (canonical spelling; mapped per provider).",
        ),
        click.option(
            "--concurrency",
            type=click.IntRange(1, 16),
            default=None,
            help="Parallel requests (default: provider's limit; Alpha Vantage is always 1).",
        ),
        click.option("--dry-run", is_flag=True, help="Print the requests (keys redacted) and write nothing."),
        click.option("--no-progress", is_flag=True, help="No progress bar on stderr."),
        click.option(
            "--format",
            "fmt",
            type=click.Choice(["table", "json"]),
            default="table",
            show_default=True,
            help="Format of the end-of-run summary.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


@click.command(name="daily")
@_common
@click.option(
    "--start", callback=_date, help="First date (YYYY-MM-DD). Default: the provider's full history."
)
@click.option("--end", callback=_date, help="Last date, inclusive (YYYY-MM-DD). Default: today.")
@click.pass_context
def daily(
    ctx: click.Context,
    source: str,
    symbols: list[str],
    concurrency: int | None,
    dry_run: bool,
    no_progress: bool,
    fmt: str,
    start: dt.date | None,
    end: dt.date | None,
) -> None:
    """Fetch daily bars into the raw layer (data/raw/SOURCE/SYMBOL/daily/).

    Every response is stored byte for byte with a manifest (request with keys redacted, sha256,
    fetch time); a re-fetch adds a new file, nothing is overwritten. Alpha Vantage: free keys get the
    last 100 bars (TIME_SERIES_DAILY compact) and 25 requests/day; AV_PREMIUM=1 switches to
    TIME_SERIES_DAILY_ADJUSTED full. Stooq needs STOOQ_API_KEY and often answers with a browser
    challenge: then download the CSV by hand and use `cxq_data ingest import --source stooq`.

    Exit status 1 if any symbol failed or was skipped, else 0.

    \b
    Example:
      cxq_data ingest daily --source yf --symbols AAPL,MSFT --start 2024-01-01
    """
    _run(ctx, source, symbols, fmt, dry_run, no_progress, concurrency, kind="daily", start=start, end=end)


@click.command(name="intraday")
@_common
@click.option(
    "--interval",
    required=True,
    help="Bar size: 1m, 2m, 5m, 15m, 30m, 60m, 90m (Alpha Vantage: 1m..60m; 5min style accepted).",
)
@click.pass_context
def intraday(
    ctx: click.Context,
    source: str,
    symbols: list[str],
    concurrency: int | None,
    dry_run: bool,
    no_progress: bool,
    fmt: str,
    interval: str,
) -> None:
    """Fetch recent intraday bars into data/raw/SOURCE/SYMBOL/intraday-INTERVAL/.

    Yahoo serves 1m bars for the last ~30 days (8 days per request) and 2m-90m for the last 60 days;
    Alpha Vantage the most recent 100 bars on a free key. Stooq has no intraday download.

    \b
    Example:
      cxq_data ingest intraday --source yf --symbols AAPL --interval 5m
    """
    _run(ctx, source, symbols, fmt, dry_run, no_progress, concurrency, kind="intraday", interval=interval)


def _run(
    ctx: click.Context,
    source: str,
    symbols: list[str],
    fmt: str,
    dry_run: bool,
    no_progress: bool,
    concurrency: int | None,
    **request: Any,
) -> None:
    from cxq_data.errors import CxqError
    from cxq_data.ingest.runner import run_ingest
    from cxq_data.settings import ProviderSettings, redact_text

    settings = ProviderSettings.from_env()
    try:
        summary = run_ingest(
            layout_of(ctx),
            source,
            symbols,
            settings=settings,
            progress=not no_progress,
            concurrency=concurrency,
            dry_run=dry_run,
            **request,
        )
    except CxqError as exc:
        raise fail(redact_text(str(exc), settings.secrets())) from None
    if dry_run and fmt == "table":
        for outcome in summary.outcomes:
            for line in outcome.requests or [f"(not planned: {outcome.reason})"]:
                click.echo(f"{outcome.symbol}: {line}")
    click.echo(render(summary.rows(detail=fmt == "json"), fmt))
    click.echo(summary.counts(), err=True)
    if not summary.ok:
        ctx.exit(1)
