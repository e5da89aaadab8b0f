"""Snakemake rule `report`: fail the run, naming them, when any symbol failed to fetch or process."""
# ruff: noqa: F821
from cxq_data.workflow import script_logging
from cxq_data.workflow_report import check_run

with script_logging(snakemake.log[0]):
    check_run(list(snakemake.input), snakemake.output[0])
