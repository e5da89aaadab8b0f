"""Snakemake rule `extract_day`: stream one day's member out of the batch ZIP, sha256-verified."""
# ruff: noqa: F821
from pathlib import Path

from cxq_data.options.batch import extract_day
from cxq_data.workflow import script_logging

with script_logging(snakemake.log[0]):
    out = Path(snakemake.output[0])
    extracted = extract_day(Path(snakemake.input[0]), snakemake.wildcards.date, out.parent)
    if extracted != out:
        extracted.replace(out)
