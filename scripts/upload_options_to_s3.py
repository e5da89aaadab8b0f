#!/usr/bin/env python
"""Upload a Databento OPRA cbbo-1m batch ZIP to S3, one verified Parquet file per day.

    python scripts/upload_options_to_s3.py ZIP --dry-run --dates 2025-08-07
    python scripts/upload_options_to_s3.py ZIP               # full run; rerun to resume
    python scripts/upload_options_to_s3.py ZIP --validate    # check the bucket against the markers
    python scripts/upload_options_to_s3.py ZIP --redo 2025-08-07   # upload a verified day again

Same library calls and state markers as `cxq_data options upload|validate` and the Snakemake rule.
Settings: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_DEFAULT_REGION, S3_BUCKET_NAME, S3_PREFIX,
S3_ENDPOINT_URL (environment or .env); data dir: --data-dir or CXQ_DATA_DIR (default ./data).
Exit status: 0 done, 1 failures / validation problems, 2 bad input, 130 stopped by a signal.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("zip", type=Path, help="Databento batch ZIP (e.g. data/raw/databento/OPRA-....zip)")
    parser.add_argument("--dates", help="comma-separated YYYY-MM-DD subset")
    parser.add_argument("--dry-run", action="store_true", help="print the plan, write and upload nothing")
    parser.add_argument("--redo", help="comma-separated dates to upload again although verified "
                                       "(e.g. after --validate found them missing or changed)")
    parser.add_argument("--validate", action="store_true", help="validate the uploaded objects instead")
    parser.add_argument("--data-dir", default=None, help="data directory (default $CXQ_DATA_DIR or ./data)")
    parser.add_argument("--underlying", default="SPY")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    return parser.parse_args(argv)


def _dates(value: str | None) -> list[str] | None:
    return [d.strip() for d in value.split(",") if d.strip()] if value else None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from cxq_data.errors import CxqError
    from cxq_data.formatting import to_table
    from cxq_data.options.pipeline import run_batch
    from cxq_data.options.s3 import S3Settings
    from cxq_data.options.validate import validate_remote
    from cxq_data.paths import DataLayout

    settings = S3Settings.from_env()
    layout = DataLayout.from_option(args.data_dir)
    dates = _dates(args.dates)
    try:
        if args.validate:
            result = validate_remote(dates or args.zip, settings=settings, layout=layout, underlying=args.underlying)
        else:
            result = run_batch(args.zip, dates=dates, dry_run=args.dry_run, settings=settings, layout=layout,
                               underlying=args.underlying, progress=not args.no_progress, handle_signals=True,
                               report=lambda line: print(line, file=sys.stderr), redo=_dates(args.redo))
    except (CxqError, ValueError, OSError) as exc:
        print(f"error: {settings.redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aborted; no partial object was left under a final key; rerun to resume", file=sys.stderr)
        return 130
    print(to_table(result.rows()))
    print(result.headline(), file=sys.stderr)
    return result.exit_code


if __name__ == "__main__":
    sys.exit(main())
