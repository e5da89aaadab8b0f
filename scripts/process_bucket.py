"""Snakemake rule `process_bucket`: raw files of one bucket of symbols of one source -> partitions,
indexes and the bucket file."""
# ruff: noqa: F821
from cxq_data.workflow import process_bucket, script_logging

with script_logging(snakemake.log[0]):
    process_bucket(snakemake.params.data_dir, snakemake.wildcards.source, list(snakemake.params.symbols),
                   snakemake.output[0], workers=snakemake.threads, s3=snakemake.params.s3)
