# Input functions and shared values. All logic lives in cxq_data.workflow.
import os

from cxq_data.workflow import (
    N_BUCKETS,
    WorkflowConfig,
    code_stamp,
    pairs_in_bucket,
    raw_inputs,
    today_utc,
)

WF = WorkflowConfig.from_mapping(config)
DATA = str(WF.layout.root)
TODAY = today_utc()
PAIRS = WF.lake_pairs()
CODE_STAMPS = {}  # source -> digest file of the code that writes its partitions (see code_stamp)
LAKE_SOURCES = sorted({src for src, _ in PAIRS})

wildcard_constraints:
    source=r"[a-z0-9_]{1,32}",
    symbol=r"\^?[A-Z0-9]{1,12}([.\-][A-Z0-9]{1,6}){0,2}",
    bucket=r"\d+",
    date=r"\d{4}-\d{2}-\d{2}",


def fetch_marker(source, symbol):
    return f"{DATA}/state/fetch/{source}/{symbol}/{TODAY}.json"


def fetch_markers():
    return [fetch_marker(src, sym) for src in WF.fetchable_sources() for sym in WF.symbols]


def index_path(source, symbol):
    return f"{DATA}/processed/symbol={symbol}/source={source}/_index.json"


def lake_indexes():
    return [index_path(src, sym) for src, sym in PAIRS]


def process_inputs(wildcards):
    """Raw files of one symbol/source, the code that normalizes them, and today's fetch if configured."""
    files = raw_inputs(WF.layout, wildcards.source, wildcards.symbol)
    if wildcards.source not in CODE_STAMPS:
        CODE_STAMPS[wildcards.source] = code_stamp(WF.layout, wildcards.source)
    files.append(CODE_STAMPS[wildcards.source])
    if wildcards.source in WF.fetchable_sources() and wildcards.symbol in WF.symbols:
        files.append(fetch_marker(wildcards.source, wildcards.symbol))
    return files


def bucket_inputs(wildcards):
    return [index_path(wildcards.source, s) for s in pairs_in_bucket(PAIRS, wildcards.source, int(wildcards.bucket))]


def bucket_files():
    return [
        f"{DATA}/state/lake/{src}/bucket-{b:02d}.json"
        for src in LAKE_SOURCES
        for b in range(N_BUCKETS)
        if pairs_in_bucket(PAIRS, src, b)
    ]


def validate_reports():
    return [f"{DATA}/state/validate/{sym}.json" for sym in sorted({sym for _, sym in PAIRS})]


def option_markers():
    from cxq_data.options.pipeline import planned_dates

    dates = planned_dates(WF.layout, WF.options)
    underlying = WF.options.get("underlying", "SPY")
    return [f"{DATA}/state/options/cbbo-1m/{underlying}/{d}.json" for d in dates]
