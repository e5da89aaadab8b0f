"""Snakemake rule `process_symbol`: raw files of one (source, symbol) -> partitions + index."""
# ruff: noqa: F821
from cxq_data.lake import process_symbol
from cxq_data.paths import DataLayout
from cxq_data.workflow import script_logging

with script_logging(snakemake.log[0]):
    result = process_symbol(DataLayout.from_option(snakemake.params.data_dir),
                            snakemake.wildcards.source, snakemake.wildcards.symbol)
    print(result)
