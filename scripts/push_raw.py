"""Snakemake rule `push_raw` (S3 default storage): raw files of one (source, bucket) -> S3 + listing."""
# ruff: noqa: F821
from cxq_data.workflow import push_raw_listing, script_logging

with script_logging(snakemake.log[0]):
    push_raw_listing(snakemake.params.data_dir, snakemake.params.s3, snakemake.wildcards.source,
                     list(snakemake.params.symbols), snakemake.output[0])
