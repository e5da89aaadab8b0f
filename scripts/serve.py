"""Snakemake rule `db`: rebuild the immutable serving files, swap the manifest, recreate the views."""
# ruff: noqa: F821
from cxq_data.workflow import refresh_serving_marker, script_logging

with script_logging(snakemake.log[0]):
    refresh_serving_marker(snakemake.params.data_dir, snakemake.output[0], snakemake.params.s3,
                           list(snakemake.input))
