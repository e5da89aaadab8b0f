"""The ``cxq_data`` command line. Each command is a thin wrapper over one library function.

Subcommand groups live in their own modules and are imported only when invoked, so that
``cxq_data query ...`` never pays for pandas, yfinance or boto3.
"""

from __future__ import annotations

import importlib
import sys

import click

from cxq_data import __version__
from cxq_data.paths import DATA_DIR_ENV, DataLayout

# command name -> "module:attribute"; modules are imported lazily.
_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "ingest": ("cxq_data.cli.ingest", "Fetch from providers or import files into the raw layer."),
    "process": ("cxq_data.cli.process", "Normalize raw files into the Parquet lake and serving layer."),
    "db": ("cxq_data.cli.db", "Create the DuckDB views over the lake."),
    "query": ("cxq_data.cli.query", "Query the lake (latest rows, a date range, or SQL)."),
    "validate": ("cxq_data.cli.validate", "Check data quality (calendar, OHLC, splits, dividends ...)."),
    "crossvalidate": ("cxq_data.cli.crossvalidate", "Compare one symbol across sources."),
    "options": ("cxq_data.cli.options", "OPRA cbbo-1m options: convert, upload to S3, validate, query."),
    "lake": ("cxq_data.cli.lake", "Inspect the lake: summary of symbols, sources, years and rows."),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(_SUBCOMMANDS))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in _SUBCOMMANDS:
            module = importlib.import_module(_SUBCOMMANDS[cmd_name][0])
            return module.cli
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text without importing every module.
        rows = [(name, _SUBCOMMANDS[name][1]) for name in sorted(_SUBCOMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--data-dir",
    envvar=DATA_DIR_ENV,
    default="data",
    show_default=True,
    type=click.Path(file_okay=False),
    help=f"Data directory (raw, processed, serving, state, cxq.duckdb). Env: {DATA_DIR_ENV}.",
)
@click.version_option(__version__, prog_name="cxq_data")
@click.pass_context
def cli(ctx: click.Context, data_dir: str) -> None:
    """cxq_data: daily equity OHLCV lake and OPRA options pipeline.

    \b
    Typical session:
      cxq_data ingest daily --source yf --symbols AAPL,MSFT --start 2024-01-01
      cxq_data process run --source yfinance --symbols AAPL,MSFT
      cxq_data query latest --symbol AAPL --rows 10
    """
    ctx.obj = DataLayout.from_option(data_dir)


def main(argv: list[str] | None = None) -> None:
    cli.main(args=argv if argv is not None else sys.argv[1:], prog_name="cxq_data")


def layout_of(ctx: click.Context) -> DataLayout:
    """The DataLayout the group option resolved (for subcommands)."""
    obj = ctx.find_root().obj
    assert isinstance(obj, DataLayout)
    return obj


def fail(message: str, code: int = 1) -> click.exceptions.Exit:
    """Print ``error: message`` to stderr and exit with ``code`` (use: ``raise fail(...)``)."""
    click.echo(f"error: {message}", err=True)
    return click.exceptions.Exit(code)
