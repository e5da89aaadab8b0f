"""``cxq_data ingest``: fetch from providers (daily, intraday) or import files."""

from __future__ import annotations

import click

from cxq_data.cli.ingest_fetch import daily, intraday
from cxq_data.cli.ingest_import import import_file


@click.group(name="ingest")
def cli() -> None:
    """Fetch from providers or import files into the immutable raw layer (data/raw/).

    \b
    Sources: yf|yfinance, av|alphavantage, stooq (aliases accepted everywhere).
    Keys come from the environment or .env: AV_API_KEY, STOOQ_API_KEY.
    """


cli.add_command(daily)
cli.add_command(intraday)
cli.add_command(import_file)
