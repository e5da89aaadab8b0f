"""``cxq_data process``: raw layer -> Parquet lake -> serving files -> DuckDB views."""

from __future__ import annotations

import click

from cxq_data.cli import fail, layout_of
from cxq_data.formatting import FORMAT_CHOICES, render


@click.group(name="process")
def cli() -> None:
    """Normalize raw files into the Parquet lake, then refresh the serving layer and the views."""


@cli.command("run")
@click.option("--source", required=True, help="Source to process: yf|yfinance, av|alphavantage, stooq or a user source.")
@click.option("--symbols", default=None, help="Comma-separated symbols (default: every symbol in raw/{source}).")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Refresh the serving layer and the views afterwards.")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr (only on a TTY).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="table", show_default=True,
              help="Format of the per-symbol summary.")
@click.pass_context
def run(ctx: click.Context, source: str, symbols: str | None, serve: bool, progress: bool, fmt: str) -> None:
    """Write processed/symbol=X/source=Y/year=Z/data.parquet for each symbol (unchanged files are kept).

    Exits 1 when any symbol failed (the others are still processed and served).
    """
    from cxq_data.errors import CxqError
    from cxq_data.lake import process
    from cxq_data.sources import source_name
    from cxq_data.symbols import parse_symbol_list

    layout = layout_of(ctx)
    try:
        wanted = parse_symbol_list(symbols) if symbols else None
        summary = process(layout, source_name(source), wanted, progress=progress)
    except CxqError as exc:
        raise fail(str(exc)) from exc
    click.echo(render(summary.rows(), fmt))
    click.echo(f"processed {len(summary.results)} symbol(s): {summary.count_written} written, "
               f"{summary.count_unchanged} unchanged, {summary.count_failed} failed", err=True)
    if serve:
        serve_and_report(layout)
    if not summary.ok:
        raise click.exceptions.Exit(1)


@cli.command("serve")
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Rebuild the changed serving files, swap the manifests and recreate the views in cxq.duckdb."""
    serve_and_report(layout_of(ctx))


def serve_and_report(layout: object, staged: object = None) -> None:
    """Refresh the serving layer and the views (``staged``: daily tables a batch run kept in memory)."""
    from cxq_data.db import refresh_serving
    from cxq_data.errors import CxqError

    try:
        result = refresh_serving(layout, staged=staged)  # type: ignore[arg-type]
    except CxqError as exc:
        raise fail(str(exc)) from exc
    for d in result.serving.datasets:
        click.echo(f"serving {d.dataset}: {d.files} file(s), {d.rows} rows, {d.rebuilt} rebuilt, "
                   f"{d.unchanged} unchanged, {d.retired} retired, {d.deleted} deleted", err=True)
    click.echo(f"views: {result.database}", err=True)
