# Provider fetches: one job per (source, symbol) and day. They need the network, so they run on the
# submitting host (localrule) and the Alpha Vantage ones take the `alphavantage_api` resource so a run
# never sends two of them at once (run with --resources alphavantage_api=1; the cross-process rate
# limiter in the library enforces 1 request/s and the daily quota anyway).


rule fetch:
    output:
        fetch_marker("{source}", "{symbol}"),
    log:
        f"{DATA}/logs/fetch/{{source}}/{{symbol}}/{TODAY}.log",
    params:
        start=WF.start or "",
        end=WF.end or "",
        av_premium=WF.av_premium,
        data_dir=DATA,
    resources:
        alphavantage_api=lambda wc: 1 if wc.source == "alphavantage" else 0,
    localrule: True
    retries: 1
    script:
        "../scripts/fetch.py"


# S3 default storage only: push the raw files of one (source, bucket) that S3 lacks (write-once, verified)
# and list what S3 holds; the bucket's process job depends on that listing. It runs here, on the host
# whose data dir received the fetches and imports; a process job elsewhere then reads raw from S3.
rule push_raw:
    input:
        raw_and_fetches,
    output:
        raw_listing("{source}", "{bucket}"),
    log:
        f"{DATA}/logs/raw/{{source}}/bucket-{{bucket}}.log",
    params:
        data_dir=DATA,
        s3=S3_PARAMS,
        symbols=bucket_symbols,
    localrule: True
    script:
        "../scripts/push_raw.py"
