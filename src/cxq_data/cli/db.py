"""``cxq_data db``: the DuckDB database of views."""

from __future__ import annotations

import click

from cxq_data.cli import fail, layout_of


@click.group(name="db")
def cli() -> None:
    """Create the DuckDB views (daily, actions, intraday, lake_summary, ...) in cxq.duckdb."""


@cli.command("init")
@click.pass_context
def init(ctx: click.Context) -> None:
    """(Re)create cxq.duckdb from the current serving manifests (views only; atomic swap)."""
    from cxq_data.db import init_db
    from cxq_data.errors import CxqError

    try:
        path = init_db(layout_of(ctx))
    except CxqError as exc:
        raise fail(str(exc)) from exc
    click.echo(f"views written to {path}")
