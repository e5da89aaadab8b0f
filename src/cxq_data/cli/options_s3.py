"""``cxq_data options upload|validate|query``: the batch ZIP -> S3 pipeline (mirrors
scripts/upload_options_to_s3.py). Heavy libraries are imported inside the commands."""

from __future__ import annotations

from pathlib import Path

import click

from cxq_data.formatting import FORMAT_CHOICES

_S3_HELP = ("S3 settings come from the environment or .env: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, "
            "AWS_DEFAULT_REGION, S3_BUCKET_NAME, S3_PREFIX (default options/cbbo-1m), S3_ENDPOINT_URL.")


def _dates(value: str | None) -> list[str] | None:
    return [d.strip() for d in value.split(",") if d.strip()] if value else None


def _settings(bucket: str | None, prefix: str | None, endpoint_url: str | None):
    from cxq_data.options.s3 import S3Settings

    return S3Settings.from_env(bucket=bucket, prefix=prefix, endpoint_url=endpoint_url)


def s3_options(func):
    func = click.option("--endpoint-url", default=None, help="S3 endpoint (env S3_ENDPOINT_URL).")(func)
    func = click.option("--prefix", default=None, help="Key prefix (env S3_PREFIX, default options/cbbo-1m).")(func)
    func = click.option("--bucket", default=None, help="Bucket (env S3_BUCKET_NAME).")(func)
    return click.option("--underlying", default="SPY", show_default=True, help="Underlying partition.")(func)


@click.command(name="upload", epilog=_S3_HELP)
@click.argument("zip_path", metavar="ZIP", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dates", default=None, help="Comma-separated YYYY-MM-DD subset (default: every day in the ZIP).")
@click.option("--dry-run", is_flag=True, help="Read the ZIP's directory and manifest and print the plan; write and "
                                             "upload nothing (member hashes are checked when a day is extracted).")
@click.option("--redo", default=None, help="Comma-separated dates to upload again although verified (e.g. after "
                                           "`options validate` found them missing or changed).")
@click.option("--no-progress", is_flag=True, help="No progress bars (also off when stderr is not a TTY).")
@s3_options
@click.pass_context
def upload(ctx: click.Context, zip_path: Path, dates: str | None, dry_run: bool, redo: str | None, no_progress: bool,
           underlying: str, bucket: str | None, prefix: str | None, endpoint_url: str | None) -> None:
    """Convert each day of a Databento batch ZIP to Parquet and upload it, verified, to
    s3://BUCKET/PREFIX/underlying=SPY/date=YYYY-MM-DD/data.parquet.

    \b
    Resumable: a date with a verified marker (DATA/state/options/cbbo-1m/SPY/DATE.json) is skipped,
    failed dates are retried on the next run. Ctrl-C (or SIGTERM, SIGHUP) once finishes the current
    date and stops (exit 130); twice aborts at once (exit 130). Exit 1 when a date failed, 2 on bad
    input or settings - the same codes as scripts/upload_options_to_s3.py.

    \b
    Examples:
      cxq_data options upload data/raw/databento/OPRA-20260208-3T68RYYKF9.zip --dry-run --dates 2025-08-07
      cxq_data options upload data/raw/databento/OPRA-20260208-3T68RYYKF9.zip
    """
    from cxq_data.cli import fail, layout_of
    from cxq_data.errors import CxqError
    from cxq_data.formatting import to_table
    from cxq_data.options.pipeline import run_batch

    settings = _settings(bucket, prefix, endpoint_url)
    try:
        summary = run_batch(zip_path, dates=_dates(dates), dry_run=dry_run, settings=settings, layout=layout_of(ctx),
                            underlying=underlying, progress=not no_progress, handle_signals=True,
                            report=lambda line: click.echo(line, err=True), redo=_dates(redo))
    except (CxqError, ValueError, OSError) as exc:
        raise fail(settings.redact(str(exc)), 2) from None
    except KeyboardInterrupt:  # the second signal
        raise fail("aborted; no partial object was left under a final key; rerun to resume", 130) from None
    click.echo(to_table(summary.rows()))
    click.echo(summary.headline(), err=True)
    ctx.exit(summary.exit_code)


@click.command(name="validate", epilog=_S3_HELP)
@click.argument("zip_path", metavar="[ZIP]", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dates", default=None, help="Comma-separated dates to expect (default: the ZIP's days, "
                                            "else every date with a marker).")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="table", show_default=True)
@s3_options
@click.pass_context
def validate(ctx: click.Context, zip_path: Path | None, dates: str | None, fmt: str, underlying: str,
             bucket: str | None, prefix: str | None, endpoint_url: str | None) -> None:
    """Check the S3 prefix: every expected date present with its recorded size, ETag, sha256, row
    count and schema (Parquet footer only); report missing, extra and mismatched dates. Exit 1 on any."""
    from cxq_data.cli import fail, layout_of
    from cxq_data.errors import CxqError
    from cxq_data.formatting import render
    from cxq_data.options.validate import validate_remote

    settings = _settings(bucket, prefix, endpoint_url)
    try:
        report = validate_remote(_dates(dates) or zip_path, settings=settings, layout=layout_of(ctx),
                                 underlying=underlying)
    except (CxqError, ValueError, OSError) as exc:
        raise fail(settings.redact(str(exc))) from None
    click.echo(render(report.rows(), fmt, columns=["date", "status", "key", "detail"]))
    click.echo(report.headline(), err=True)
    ctx.exit(report.exit_code)


@click.command(name="query", epilog=_S3_HELP)
@click.argument("sql")
@click.option("--local", "local_root", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Query a local copy (folder holding underlying=*/date=*/data.parquet) instead of S3.")
@click.option("--format", "fmt", type=click.Choice(FORMAT_CHOICES), default="table", show_default=True)
@click.option("--bucket", default=None, help="Bucket (env S3_BUCKET_NAME).")
@click.option("--prefix", default=None, help="Key prefix (env S3_PREFIX).")
@click.option("--endpoint-url", default=None, help="S3 endpoint (env S3_ENDPOINT_URL).")
def query(sql: str, local_root: Path | None, fmt: str, bucket: str | None, prefix: str | None,
          endpoint_url: str | None) -> None:
    """Run DuckDB SQL over the uploaded dataset, exposed as the view `cbbo` (the Parquet columns plus the
    hive partitions `underlying` and `date`; WHERE date = ... reads only that day's file).

    \b
    Example:
      cxq_data options query "SELECT date, count(*) FROM cbbo WHERE date = DATE '2025-08-07' GROUP BY date"
    """
    from cxq_data.cli import fail
    from cxq_data.errors import CxqError
    from cxq_data.formatting import render
    from cxq_data.options.query import run_query

    settings = None if local_root else _settings(bucket, prefix, endpoint_url)
    try:
        result = run_query(sql, settings=settings, local_root=local_root)
    except (CxqError, OSError) as exc:
        raise fail(settings.redact(str(exc)) if settings else str(exc)) from None
    click.echo(render(result.records(), fmt, columns=result.columns))
