# Input functions and shared values. All logic lives in cxq_data.workflow.
import os

from cxq_data.workflow import (
    WorkflowConfig,
    buckets,
    code_stamp,
    raw_inputs,
    storage_pairs,
    storage_target,
    today_utc,
)

WF = WorkflowConfig.from_mapping(config)
TODAY = today_utc()

# S3 as Snakemake's default storage (--default-storage-provider s3 --default-storage-prefix s3://B/P
# --storage-s3-endpoint-url URL): the data dir's files live under s3://B/P/<data dir relative to the
# work folder>/. Declared files move through the plugin; the lake's partitions, indexes and raw files
# through the library's verified uploader (docs/cluster.md, "S3 as the default storage for the lake").
_STORAGE = workflow.storage_settings
_PLUGIN = workflow.storage_registry.default_storage_provider if _STORAGE.default_storage_provider else None
S3 = storage_target(
    _STORAGE.default_storage_provider,
    _STORAGE.default_storage_prefix,
    WF.layout.root,
    endpoint_url=getattr(getattr(_PLUGIN, "settings", None), "endpoint_url", None),
    region=getattr(getattr(_PLUGIN, "settings", None), "region", None),
)
STORAGE = S3 is not None
S3_PARAMS = S3.as_params() if STORAGE else {}
DATA = os.path.relpath(WF.layout.root) if STORAGE else str(WF.layout.root)  # storage keys need a relative path
PAIRS = storage_pairs(WF, S3) if STORAGE else WF.lake_pairs()
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


def bucket_symbols(wildcards):
    return BUCKETS.get((wildcards.source, int(wildcards.bucket)), [])


def raw_listing(source, bucket):
    return f"{DATA}/state/raw/{source}/bucket-{bucket}.json"


def raw_and_fetches(wildcards):
    """Raw folders of a bucket's symbols (local to this host) and today's fetches, if configured."""
    files = []
    for symbol in bucket_symbols(wildcards):
        folders = raw_inputs(WF.layout, wildcards.source, symbol)
        files += [local(f) for f in folders] if STORAGE else folders
        if (wildcards.source, symbol) in FETCHED:
            files.append(fetch_marker(wildcards.source, symbol))
    return files


def process_inputs(wildcards):
    """The code that normalizes the source, then: the bucket's raw folders and fetches (local run), or
    the bucket's raw listing in S3 (storage mode: rule push_raw put the raw files there)."""
    source = wildcards.source
    if source not in CODE_STAMPS:
        CODE_STAMPS[source] = code_stamp(WF.layout, source)
    if STORAGE:
        return [local(CODE_STAMPS[source]), raw_listing(source, wildcards.bucket)]
    return [CODE_STAMPS[source], *raw_and_fetches(wildcards)]


def serving_marker():
    """The db rule's target. In storage mode it stays local (flag ``local``): the serving files and
    views are built on the host that queries them, from its mirror of the lake in S3."""
    path = f"{DATA}/state/lake/serving.json"
    return local(path) if STORAGE else path


def validate_reports():
    return [f"{DATA}/state/validate/{sym}.json" for sym in sorted({sym for _, sym in PAIRS})]


def option_markers():
    from cxq_data.options.pipeline import planned_dates

    dates = planned_dates(WF.layout, WF.options)
    underlying = WF.options.get("underlying", "SPY")
    return [f"{DATA}/state/options/cbbo-1m/{underlying}/{d}.json" for d in dates]


def run_report(target):
    """The last output of a target's run (rules report, validate_report): written when nothing failed."""
    path = f"{DATA}/state/run/{target}-{TODAY}.json"
    return local(path) if STORAGE else path
