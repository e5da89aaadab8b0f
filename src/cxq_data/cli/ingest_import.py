"""``cxq_data ingest import``: a thin wrapper over :func:`cxq_data.ingest.importer.import_file`."""

from __future__ import annotations

import click

from cxq_data.cli import fail, layout_of


@click.command("import")
@click.option("--source", required=True,
              help="Source name to store the data under: stooq, yfinance, ... or your own [a-z0-9_]{1,32}.")
@click.option("--symbol", default=None,
              help="Symbol of a single-symbol file (required there). For a Stooq bulk ZIP: import only this one.")
@click.option("--workers", type=click.IntRange(1, 64), default=None,
              help="Worker processes for a bulk ZIP (default: number of CPUs, max 8).")
@click.option("--process", "process_", is_flag=True,
              help="Also write the lake partitions of the imported symbols in the same pass (each member is "
                   "parsed once), then refresh the serving layer and the views: the fastest way to build a "
                   "lake from a bulk ZIP. Holds the new daily rows in memory until the serving files are built "
                   "(measured: 665 MB peak for 5.2 million rows; import without it on a small machine).")
@click.option("--progress/--no-progress", default=True, help="Progress bar on stderr (only on a TTY).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True,
              help="Format of the summary.")
@click.argument("path", type=click.Path(dir_okay=False))
@click.pass_context
def import_file(ctx: click.Context, source: str, symbol: str | None, workers: int | None, process_: bool,
                progress: bool, fmt: str, path: str) -> None:
    """Import a local file into the raw layer (stored byte for byte, processed like a fetch).

    \b
    PATH is one of:
      a CSV with Date,Open,High,Low,Close[,Adj Close][,Volume][,Dividends][,Stock Splits]
          (any column order/case, rows in any order; yfinance exports work) - needs --symbol;
      a Stooq CSV (Date,Open,High,Low,Close[,Volume]) with --source stooq - needs --symbol;
      a Stooq ASCII file (<TICKER>,<PER>,<DATE>,...): the symbol comes from <TICKER>;
      a Stooq bulk ZIP (d_us_txt.zip): one raw file per member, symbol from each ticker.
    Re-importing the same bytes stores nothing. Exits 1 on a bad file, when members failed, or (with
    --process) when a symbol could not be processed.

    \b
    Example:
      cxq_data ingest import --source stooq d_us_txt.zip
      cxq_data ingest import --source stooq --process d_us_txt.zip     # raw + lake + serving + views
      cxq_data ingest import --source mydata --symbol AET.L AET-L.csv
    """
    from cxq_data.errors import CxqError
    from cxq_data.formatting import render, to_json
    from cxq_data.ingest.importer import import_file as run_import

    layout = layout_of(ctx)
    try:
        summary = run_import(layout, path, source, symbol, progress=progress, workers=workers,
                             process=process_, keep_tables=process_)
    except CxqError as exc:
        raise fail(str(exc)) from exc
    if fmt == "json":
        click.echo(to_json(summary.as_dict()))
    else:
        click.echo(f"{summary.file} ({summary.format}) -> source {summary.source}: "
                   f"{len(summary.imported)} symbol(s) imported, {len(summary.unchanged)} unchanged, "
                   f"{summary.rows} rows, {len(summary.skipped)} skipped")
        if len(summary.imported) + len(summary.unchanged) <= 20:
            for sym in summary.imported:
                click.echo(f"  imported  {sym}")
            for sym in summary.unchanged:
                click.echo(f"  unchanged {sym} (same bytes as its newest raw file)")
        if summary.skipped:
            rows = [{"member": s.member, "symbol": s.symbol or "", "reason": s.reason} for s in summary.skipped]
            click.echo(render(rows, "table"))
    if summary.processed is not None:
        _report_processed(layout, summary.processed, fmt)
    if not summary.ok:
        raise click.exceptions.Exit(1)


def _report_processed(layout: object, batch: object, fmt: str) -> None:
    """Failed symbols of the lake run, its counts, then the serving refresh (as `process run` does)."""
    from cxq_data.cli.process import serve_and_report
    from cxq_data.formatting import render

    summary = batch.summary  # type: ignore[attr-defined]
    failed = [r for r in summary.rows() if r["status"] == "failed"]
    if failed and fmt == "table":
        click.echo(render([{"symbol": r["symbol"], "reason": r["reason"]} for r in failed], "table"))
    click.echo(f"processed {len(summary.results)} symbol(s): {summary.count_written} written, "
               f"{summary.count_unchanged} unchanged, {summary.count_failed} failed", err=True)
    serve_and_report(layout, staged=batch.staged)  # type: ignore[attr-defined]
