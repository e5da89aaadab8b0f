# The last job of `ingest`, `process` and `all`: a failed fetch or symbol does not fail its own job (the
# others are still processed and served); this one fails the run at the end and names every failure.


def report_inputs(wildcards):
    files = fetch_markers()
    if wildcards.target in ("process", "all"):
        files += bucket_files()
    if wildcards.target == "all":
        files.append(serving_marker())
    return files


rule report:
    input:
        report_inputs,
    output:
        run_report("{target}"),
    log:
        f"{DATA}/logs/run/{{target}}-{TODAY}.log",
    wildcard_constraints:
        target="ingest|process|all",
    localrule: True
    script:
        "../scripts/report.py"
