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


# `make validate` exits 1 like `cxq_data validate run` when a report holds an error finding.
rule validate_report:
    input:
        validate_reports(),
    output:
        run_report("validate"),
    log:
        f"{DATA}/logs/run/validate-{TODAY}.log",
    localrule: True
    script:
        "../scripts/validate_report.py"
