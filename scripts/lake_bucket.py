"""Snakemake rule `lake_bucket`: gather the indexes of one bucket of symbols into one file."""
# ruff: noqa: F821
from cxq_data.workflow import script_logging, write_bucket

with script_logging(snakemake.log[0]):
    write_bucket(snakemake.input, snakemake.output[0])
