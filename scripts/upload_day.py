"""Snakemake rule `upload_day`: convert one day to Parquet, upload verified, write the marker."""
# ruff: noqa: F821
from pathlib import Path

from cxq_data.options.pipeline import process_extracted_day, zip_for_date
from cxq_data.options.s3 import S3Settings
from cxq_data.paths import DataLayout
from cxq_data.workflow import script_logging

with script_logging(snakemake.log[0]):
    layout = DataLayout.from_option(snakemake.params.data_dir)
    date = snakemake.wildcards.date
    zip_path = zip_for_date(layout, snakemake.config.get("options") or {}, date)
    process_extracted_day(Path(snakemake.input[0]), date, zip_path, settings=S3Settings.from_env(), layout=layout,
                          underlying=snakemake.wildcards.underlying)
