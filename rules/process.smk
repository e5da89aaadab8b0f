# raw files -> per-partition Parquet (processed/symbol=X/source=Y/year=Z/data.parquet), one job per
# (source, symbol); the job's target is the symbol/source index written last. Inputs include the
# normalizer code for that source, so fixing a normalizer rebuilds exactly the affected partitions.
# Indexes are gathered into buckets (bounded fan-in), then the serving layer and the views are rebuilt.


rule process_symbol:
    input:
        process_inputs,
    output:
        index_path("{source}", "{symbol}"),
    log:
        f"{DATA}/logs/process/{{source}}/{{symbol}}.log",
    params:
        data_dir=DATA,
    group: "process"  # on a cluster: --group-components process=N packs N symbols into one job
    resources:
        mem_mb=1000,
        runtime=10,
        cpus_per_task=1,
    script:
        "../scripts/process_symbol.py"


rule lake_bucket:
    input:
        bucket_inputs,
    output:
        f"{DATA}/state/lake/{{source}}/bucket-{{bucket}}.json",
    log:
        f"{DATA}/logs/lake/{{source}}/bucket-{{bucket}}.log",
    localrule: True  # gathers a few small JSON files: not worth a cluster job
    script:
        "../scripts/lake_bucket.py"


rule db:
    input:
        bucket_files(),
    output:
        f"{DATA}/state/lake/serving.json",
    log:
        f"{DATA}/logs/lake/serving.log",
    params:
        data_dir=DATA,
    resources:
        mem_mb=2000,
        runtime=30,
        cpus_per_task=1,
    script:
        "../scripts/serve.py"
