# Data-quality checks, one report per symbol over all its sources.


rule validate_symbol:
    input:
        serving_marker(),
    output:
        f"{DATA}/state/validate/{{symbol}}.json",
    log:
        f"{DATA}/logs/validate/{{symbol}}.log",
    params:
        data_dir=DATA,
        default_exchange=WF.default_exchange,
    group: "validate"
    localrule: STORAGE  # storage mode: reads the host's mirror of the lake (see rule db)
    resources:
        mem_mb=1000,
        runtime=10,
        cpus_per_task=1,
    script:
        "../scripts/validate_symbol.py"
