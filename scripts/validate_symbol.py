"""Snakemake rule `validate_symbol`: data-quality findings of one symbol (all sources) as JSON."""
# ruff: noqa: F821
from cxq_data.workflow import script_logging, validate_to_report

with script_logging(snakemake.log[0]):
    validate_to_report(snakemake.params.data_dir, snakemake.wildcards.symbol, snakemake.output[0],
                       default_exchange=snakemake.params.default_exchange)
