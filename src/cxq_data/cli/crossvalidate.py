"""``cxq_data crossvalidate``: compare sources (thin wrappers over quality.compare/matrix/adjust)."""

from __future__ import annotations

import click

from cxq_data.cli import fail, layout_of
from cxq_data.formatting import FORMAT_CHOICES


@click.group(name="crossvalidate")
def cli() -> None:
    """Compare one symbol across sources, or every source pair for many symbols."""


def _sources(value: str, at_least: int) -> list[str]:
    from cxq_data.sources import parse_source_list

    names = parse_source_list(value) or []
    if len(names) < at_least:
        raise click.BadParameter(f"give at least {at_least} source(s), got {value!r}", param_hint="--sources")
    return names


@cli.command(name="compare")
@click.option("--symbol", required=True, help="Symbol to compare, e.g. AAPL.")
@click.option("--sources", required=True, help="Comma-separated sources; the first is the reference.")
@click.option("--tolerance", type=float, default=1.0, show_default=True, help="Mismatch tolerance in percent.")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a PNG chart here.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def compare_cmd(ctx: click.Context, symbol: str, sources: str, tolerance: float, plot: str | None, fmt: str) -> None:
    """Align sources by date; compare close, adjusted close, daily returns and volume.

    Returns are the meaningful comparison for sources adjusted differently (Stooq). A constant
    volume ratio is reported once under "explained". best_shift_days != 0 means one source's
    dates are shifted by a day.
    """
    from cxq_data.errors import CxqError
    from cxq_data.quality.compare import compare
    from cxq_data.quality.report import render_compare
    from cxq_data.symbols import validate_symbol

    try:
        result = compare(layout_of(ctx), validate_symbol(symbol), _sources(sources, 2), tolerance, plot)
    except (CxqError, ValueError) as exc:
        raise fail(str(exc)) from exc
    click.echo(render_compare(result, fmt))


@cli.command(name="matrix")
@click.option("--symbols", required=True, help="Comma-separated symbols.")
@click.option("--sources", required=True, help="Comma-separated sources (every pair is compared).")
@click.option("--tolerance", type=float, default=1.0, show_default=True, help="Return agreement tolerance (pp).")
@click.option("--plot", type=click.Path(dir_okay=False), default=None, help="Write a heat-map PNG here.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="table", show_default=True)
@click.pass_context
def matrix_cmd(ctx: click.Context, symbols: str, sources: str, tolerance: float, plot: str | None, fmt: str) -> None:
    """Per symbol and source pair: share of dates whose daily returns agree, and the worst date.

    Exits 1 when a pair has no common dates (the symbol is missing from a source): it was not compared.
    """
    from cxq_data.errors import CxqError
    from cxq_data.formatting import render
    from cxq_data.quality.matrix import matrix
    from cxq_data.symbols import parse_symbol_list

    try:
        rows = matrix(layout_of(ctx), parse_symbol_list(symbols), _sources(sources, 2), tolerance, plot)
    except (CxqError, ValueError) as exc:
        raise fail(str(exc)) from exc
    click.echo(render([r.to_dict() for r in rows], fmt))
    empty = [f"{r.symbol} {r.source_a}/{r.source_b}" for r in rows if not r.dates_compared]
    if empty:  # a symbol missing from a source (or a typo): that pair was not cross-validated
        raise fail(f"no common dates to compare for {', '.join(empty)}")


@cli.command(name="adjustments")
@click.option("--symbol", required=True, help="Symbol to check.")
@click.option("--source", required=True, help="Source whose adjusted_close is checked.")
@click.option("--tolerance", type=float, default=0.5, show_default=True, help="Tolerance in percent.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="table", show_default=True)
@click.pass_context
def adjustments_cmd(ctx: click.Context, symbol: str, source: str, tolerance: float, fmt: str) -> None:
    """Dates where the provider's adjusted close differs from ours (CRSP backward factors from
    the as-traded close and the actions; the daily_adjusted view). Exit 1 if any."""
    from cxq_data.errors import CxqError
    from cxq_data.formatting import render
    from cxq_data.quality.adjust import provider_adjustment_differences
    from cxq_data.sources import source_name
    from cxq_data.symbols import validate_symbol

    try:
        rows = provider_adjustment_differences(layout_of(ctx), validate_symbol(symbol), source_name(source), tolerance)
    except (CxqError, ValueError) as exc:
        raise fail(str(exc)) from exc
    click.echo(render([r.to_dict() for r in rows], fmt) if rows or fmt != "table" else "adjusted close agrees")
    if rows:
        ctx.exit(1)
