"""``cxq_data validate``: data-quality checks over the lake (thin wrapper over quality.validate)."""

from __future__ import annotations

import click

from cxq_data.cli import fail, layout_of
from cxq_data.formatting import FORMAT_CHOICES


@click.group(name="validate")
def cli() -> None:
    """Check data quality: calendar sessions, OHLC order, unit jumps, splits, dividends, restatements."""


@cli.command(name="run")
@click.option("--symbols", required=True, help="Comma-separated symbols, e.g. AAPL,MSFT,AET.L.")
@click.option("--source", "sources", default=None, help="Only these sources (comma-separated); default all.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Report findings from this date.")
@click.option("--end", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Report findings up to this date.")
@click.option("--exchange", default=None, help="Calendar for symbols without a suffix (default XNYS).")
@click.option("--return-threshold", type=float, default=None, help="|daily return| flagged as outlier (0.4).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="table", show_default=True)
@click.pass_context
def run(ctx: click.Context, symbols: str, sources: str | None, start, end, exchange: str | None,
        return_threshold: float | None, fmt: str) -> None:
    """Run every check and print the findings; exit status 1 if any has severity error.

    \b
    Checks (severity):
      ohlc_inconsistent, non_positive_price, negative_volume, duplicate_date,
      price_unit_jump, unadjusted_split, dividend_adjustment                 (error)
      null_price, missing_session, extra_session, zero_volume, stale_price,
      return_outlier, restated_history                                       (warning)
    Sessions are checked against the exchange calendar of the symbol's suffix (AET.L -> XLON).
    """
    from cxq_data.errors import CxqError
    from cxq_data.quality.report import render_findings
    from cxq_data.quality.validate import NoDataError, validate_symbols
    from cxq_data.sources import parse_source_list
    from cxq_data.symbols import parse_symbol_list

    config = {"default_exchange": exchange} if exchange else {}
    if return_threshold is not None:
        config["return_threshold"] = return_threshold
    missing = None
    try:
        findings = validate_symbols(layout_of(ctx), parse_symbol_list(symbols), parse_source_list(sources),
                                    start.date() if start else None, end.date() if end else None, config)
    except NoDataError as exc:  # report the others, then fail
        findings, missing = exc.findings, str(exc)
    except (CxqError, ValueError) as exc:
        raise fail(str(exc)) from exc
    text, has_error = render_findings(findings, fmt)
    click.echo(text)
    if missing:
        raise fail(missing)
    if has_error:
        ctx.exit(1)
