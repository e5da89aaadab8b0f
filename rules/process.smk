# raw files -> per-partition Parquet (processed/symbol=X/source=Y/year=Z/data.parquet), one job per
# (source, bucket of symbols): ~160 symbols a job at U=5,000, so a no-op rerun stays cheap and a Slurm
# job is seconds of work, not milliseconds. Inputs: the symbols' raw folders (their mtime moves with
# every new fetch), the source's code stamp (a normalizer fix reruns that source's buckets) and today's
# fetch markers. Inside a job, pairs whose raw files and code are unchanged are skipped by the library,
# so only the partitions of the touched symbols are rewritten. Then the serving layer and the views.


rule process_bucket:
    input:
        process_inputs,
    output:
        bucket_file("{source}", "{bucket}"),
    log:
        f"{DATA}/logs/process/{{source}}/bucket-{{bucket}}.log",
    params:
        data_dir=DATA,
        symbols=bucket_symbols,
        s3=S3_PARAMS,  # storage mode: bucket and key root of the lake in S3 (no secrets)
    # Worker processes inside the job (capped by --cores). 1 by default: with 32 jobs per source,
    # Snakemake running jobs side by side beats workers inside a job (full rebuild of 5,000 symbols on
    # 2 cores: 31.5 s with threads 1 vs 41-53 s with 2). Raise it with --set-threads process_bucket=N
    # when few buckets run at once (e.g. big Slurm nodes); Slurm then gets as many CPUs.
    threads: 1
    resources:
        mem_mb=2000,  # measured: peak RSS 105-135 MB for 157 symbols x 2 years of history
        runtime=30,
        cpus_per_task=lambda wc, threads: threads,
    script:
        "../scripts/process_bucket.py"


# In storage mode db runs on this host (localrule): it mirrors the lake from S3 into the local data dir,
# then builds the serving files and views there, where queries run.
rule db:
    input:
        bucket_files(),
    output:
        serving_marker(),
    log:
        f"{DATA}/logs/lake/serving.log",
    params:
        data_dir=DATA,
        s3=S3_PARAMS,
    localrule: STORAGE
    resources:
        mem_mb=2000,
        runtime=30,
        cpus_per_task=1,
    script:
        "../scripts/serve.py"
