"""``cxq_data lake``: inspect the processed lake."""

from __future__ import annotations

import click

from cxq_data.cli import layout_of
from cxq_data.formatting import FORMAT_CHOICES, render


@click.group(name="lake")
def cli() -> None:
    """Inspect the processed Parquet lake (from its per-symbol indexes; no data is read)."""


@cli.command("summary")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="table", show_default=True)
@click.pass_context
def summary(ctx: click.Context, fmt: str) -> None:
    """Per source: symbols, first/last year, partitions, rows and bytes on disk."""
    from cxq_data.lake_index import lake_summary

    click.echo(render(lake_summary(layout_of(ctx)), fmt))
