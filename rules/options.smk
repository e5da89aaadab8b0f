# OPRA cbbo-1m: one verified day member extracted from the batch ZIP -> Parquet -> S3 -> marker.
# The marker (data/state/options/cbbo-1m/SPY/DATE.json) is the single source of truth shared with
# scripts/upload_options_to_s3.py; the extracted .dbn.zst is temporary.


def options_zip(wildcards):
    from cxq_data.errors import ConfigError
    from cxq_data.options.pipeline import zip_for_date

    if STORAGE:  # the ZIP is on this host and the jobs write to S3 themselves: no default storage needed
        raise ConfigError("options_upload uploads to S3 itself (S3_BUCKET_NAME, S3_ENDPOINT_URL): "
                          "run it without --default-storage-provider")
    return str(zip_for_date(WF.layout, WF.options, wildcards.date))


def options_destination(wildcards):
    from cxq_data.options.s3 import S3Settings

    return str(S3Settings.from_env().destination(wildcards.underlying, wildcards.date))


rule extract_day:
    input:
        options_zip,
    output:
        temp(f"{DATA}/work/options/{{date}}.dbn.zst"),
    log:
        f"{DATA}/logs/options/extract-{{date}}.log",
    group: "options"  # extract + upload of one date run in one cluster job (the .dbn.zst stays local to it)
    resources:
        mem_mb=500,
        runtime=20,
        cpus_per_task=1,
    script:
        "../scripts/extract_day.py"


rule upload_day:
    input:
        f"{DATA}/work/options/{{date}}.dbn.zst",
    output:
        f"{DATA}/state/options/cbbo-1m/{{underlying}}/{{date}}.json",
    log:
        f"{DATA}/logs/options/upload-{{underlying}}-{{date}}.log",
    params:
        data_dir=DATA,
        # a new bucket, prefix or endpoint reruns the day (Snakemake's params trigger); the marker
        # records its destination, so the standalone script also uploads again
        destination=options_destination,
    group: "options"
    resources:
        mem_mb=600,
        runtime=30,
        cpus_per_task=1,
    retries: 2
    script:
        "../scripts/upload_day.py"
