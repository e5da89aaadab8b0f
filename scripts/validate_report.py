"""Snakemake rule `validate_report`: exit 1 when a symbol's quality report holds an error finding."""
# ruff: noqa: F821
from cxq_data.workflow import script_logging
from cxq_data.workflow_report import check_validation

with script_logging(snakemake.log[0]):
    check_validation(list(snakemake.input), snakemake.output[0])
