"""Snakemake rule `fetch`: one provider fetch for one (source, symbol); writes the day's marker."""
# ruff: noqa: F821  (snakemake is injected by Snakemake)
from cxq_data.workflow import fetch_symbol, script_logging

with script_logging(snakemake.log[0]):
    fetch_symbol(
        data_dir=snakemake.params.data_dir,
        source=snakemake.wildcards.source,
        symbol=snakemake.wildcards.symbol,
        start=snakemake.params.start or None,
        end=snakemake.params.end or None,
        av_premium=snakemake.params.av_premium,
        marker=snakemake.output[0],
    )
