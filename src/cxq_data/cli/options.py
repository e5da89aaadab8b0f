"""``cxq_data options``: the OPRA cbbo-1m pipeline (Databento batch ZIP -> Parquet -> S3)."""

from __future__ import annotations

import click

from cxq_data.cli.options_convert import convert
from cxq_data.cli.options_s3 import query, upload, validate


@click.group(name="options")
def cli() -> None:
    """OPRA cbbo-1m options: convert DBN to Parquet, upload to S3 (verified, resumable), validate, query.

    \b
    S3 settings come from the environment or .env: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION, S3_BUCKET_NAME, S3_PREFIX (default options/cbbo-1m), S3_ENDPOINT_URL.
    """


cli.add_command(convert)
cli.add_command(upload)
cli.add_command(validate)
cli.add_command(query)
