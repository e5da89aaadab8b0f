# Data-quality checks, one report per symbol over all its sources.


rule validate_symbol:
    input:
        rules.db.output,
    output:
        f"{DATA}/state/validate/{{symbol}}.json",
    log:
        f"{DATA}/logs/validate/{{symbol}}.log",
    params:
        data_dir=DATA,
        default_exchange=WF.default_exchange,
    script:
        "../scripts/validate_symbol.py"
