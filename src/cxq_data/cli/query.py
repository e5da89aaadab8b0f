"""``cxq_data query``: latest rows, a date range, or SQL over the views (no pandas on this path)."""

from __future__ import annotations

import click

from cxq_data.cli import fail, layout_of
from cxq_data.formatting import FORMAT_CHOICES, render

_format_option = click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="table",
                              show_default=True, help="Output format (JSON: list of objects, ISO dates).")
_source_option = click.option("--source", default=None, help="Only this source (yf|yfinance, av, stooq, ...).")


@click.group(name="query")
def cli() -> None:
    """Query the lake through the DuckDB views (run `cxq_data db init` or `process run` first)."""


def _emit(call, fmt: str) -> None:  # type: ignore[no-untyped-def]
    from cxq_data.errors import CxqError

    try:
        rows = call()
    except CxqError as exc:
        raise fail(str(exc)) from exc
    click.echo(render(rows, fmt))


@cli.command("latest")
@click.option("--symbol", required=True, help="Ticker, e.g. AAPL or BRK.B.")
@click.option("--rows", default=10, show_default=True, type=click.IntRange(min=1), help="Rows per source.")
@_source_option
@_format_option
@click.pass_context
def latest(ctx: click.Context, symbol: str, rows: int, source: str | None, fmt: str) -> None:
    """The most recent daily bars of SYMBOL, newest first, per source."""
    from cxq_data import query

    _emit(lambda: query.latest(layout_of(ctx), symbol, rows, source), fmt)


@cli.command("range")
@click.option("--symbol", required=True, help="Ticker, e.g. AAPL.")
@click.option("--start", required=True, help="First date, YYYY-MM-DD (inclusive).")
@click.option("--end", required=True, help="Last date, YYYY-MM-DD (inclusive).")
@_source_option
@_format_option
@click.pass_context
def range_(ctx: click.Context, symbol: str, start: str, end: str, source: str | None, fmt: str) -> None:
    """Daily bars of SYMBOL between START and END."""
    from cxq_data import query

    _emit(lambda: query.date_range(layout_of(ctx), symbol, start, end, source), fmt)


@cli.command("sql")
@click.argument("statement")
@_format_option
@click.pass_context
def sql(ctx: click.Context, statement: str, fmt: str) -> None:
    """Run one reading STATEMENT, e.g. "SELECT source, count(*) FROM daily GROUP BY 1".

    SELECT, WITH, FROM, DESCRIBE, SHOW, SUMMARIZE and EXPLAIN run; anything that would write, even a
    file (COPY ... TO, ATTACH, CREATE, SET, INSTALL), is refused with exit status 1. Views: daily,
    daily_adjusted, actions, intraday, lake_summary.
    """
    from cxq_data import query

    _emit(lambda: query.sql(layout_of(ctx), statement), fmt)
