"""Snakemake rule `upload_day`: convert one day to Parquet, upload verified, write the marker."""
# ruff: noqa: F821
from pathlib import Path

from cxq_data.options.pipeline import process_day
from cxq_data.options.s3 import S3Settings
from cxq_data.paths import DataLayout
from cxq_data.workflow import script_logging

with script_logging(snakemake.log[0]):
    process_day(Path(snakemake.input[0]), snakemake.wildcards.date, settings=S3Settings.from_env(),
                layout=DataLayout.from_option(snakemake.params.data_dir),
                underlying=snakemake.wildcards.underlying)
