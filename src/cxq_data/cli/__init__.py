"""The ``cxq_data`` command line. Each command is a thin wrapper over one library function.

Subcommand groups live in their own modules and are imported only when invoked, so that
``cxq_data query ...`` never pays for pandas, yfinance or boto3.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from cxq_data import __version__
from cxq_data.paths import DATA_DIR_ENV, DataLayout
from cxq_data.settings import load_dotenv_once

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
            return _with_data_dir_option(module.cli)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        """One place that turns what a command did not handle into ``error: ...`` and exit status 1:
        the library's own errors (bad input, damaged state) and the environment's (a read-only or
        full disk, a missing permission) - not a traceback."""
        from cxq_data.errors import CxqError

        try:
            return super().invoke(ctx)
        except BrokenPipeError:  # `cxq_data query ... | head`: the reader left, nothing to report
            _silence_stdout()
            ctx.exit(1)
        except CxqError as exc:
            raise fail(str(exc)) from None
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            raise fail(f"{exc.strerror or exc}{where}") from None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help text without importing every module.
        rows = [(name, _SUBCOMMANDS[name][1]) for name in sorted(_SUBCOMMANDS)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _set_data_dir(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.find_root().obj = DataLayout.from_option(value)


def _with_data_dir_option(command: click.Command) -> click.Command:
    """Every command also takes ``--data-dir`` after its name (``cxq_data query latest --data-dir D``),
    overriding the group option: users type it where they type the other options."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            _with_data_dir_option(sub)
    elif not any(p.name == "data_dir_override" for p in command.params):
        command.params.append(click.Option(
            ["--data-dir", "data_dir_override"], type=click.Path(file_okay=False), expose_value=False,
            callback=_set_data_dir, help=f"Data directory (default: ./data or ${DATA_DIR_ENV}; .env is read)."))
    return command


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not fail on the closed pipe."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test runner's buffer)
        pass


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option(
    "--data-dir",
    default=None,
    type=click.Path(file_okay=False),
    help=f"Data directory (raw, processed, serving, state, cxq.duckdb). Default: ${DATA_DIR_ENV} (from the "
         "environment or ./.env), else ./data. Also accepted after any command.",
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
    if data_dir is None:
        load_dotenv_once()  # CXQ_DATA_DIR may be set in .env, like every other setting
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
