# Input functions and shared values. All logic lives in cxq_data.workflow.

from cxq_data.workflow import (
    WorkflowConfig,
    buckets,
    code_stamp,
    raw_inputs,
    today_utc,
)

WF = WorkflowConfig.from_mapping(config)
DATA = str(WF.layout.root)
TODAY = today_utc()
PAIRS = WF.lake_pairs()
BUCKETS = buckets(PAIRS)  # (source, bucket) -> symbols
CODE_STAMPS = {}  # source -> digest file of the code that writes its partitions (see code_stamp)
FETCHED = {(src, sym) for src in WF.fetchable_sources() for sym in WF.symbols}  # pairs with a fetch job

wildcard_constraints:
    source=r"[a-z0-9_]{1,32}",
    symbol=r"\^?[A-Z0-9]{1,12}([.\-][A-Z0-9]{1,6}){0,2}",
    bucket=r"\d+",
    date=r"\d{4}-\d{2}-\d{2}",


def fetch_marker(source, symbol):
    return f"{DATA}/state/fetch/{source}/{symbol}/{TODAY}.json"


def fetch_markers():
    return [fetch_marker(src, sym) for src in WF.fetchable_sources() for sym in WF.symbols]


def bucket_file(source, bucket):
    return f"{DATA}/state/lake/{source}/bucket-{bucket}.json"


def bucket_files():
    return [bucket_file(src, f"{b:02d}") for src, b in sorted(BUCKETS)]


def process_inputs(wildcards):
    """Raw folders of a bucket's symbols, the code that normalizes them, and today's fetches if configured."""
    source = wildcards.source
    if source not in CODE_STAMPS:
        CODE_STAMPS[source] = code_stamp(WF.layout, source)
    files = [CODE_STAMPS[source]]
    for symbol in BUCKETS.get((source, int(wildcards.bucket)), []):
        files += raw_inputs(WF.layout, source, symbol)
        if (source, symbol) in FETCHED:
            files.append(fetch_marker(source, symbol))
    return files


def validate_reports():
    return [f"{DATA}/state/validate/{sym}.json" for sym in sorted({sym for _, sym in PAIRS})]


def option_markers():
    from cxq_data.options.pipeline import planned_dates

    dates = planned_dates(WF.layout, WF.options)
    underlying = WF.options.get("underlying", "SPY")
    return [f"{DATA}/state/options/cbbo-1m/{underlying}/{d}.json" for d in dates]
