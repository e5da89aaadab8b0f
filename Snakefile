# cxq_data workflow: daily equity lake + OPRA options upload.
#   make ingest | make process | make db | make all | make validate | make options
#   snakemake --cores 4 options_upload
from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config/config.yaml"


validate(config, schema="config/schema.yaml")


include: "rules/common.smk"
include: "rules/ingest.smk"
include: "rules/process.smk"
include: "rules/validate.smk"
include: "rules/options.smk"
include: "rules/report.smk"


# Each target ends with its report: exit 1 naming every symbol that failed to fetch or process,
# after everything else was done (see rules/report.smk).
rule all:
    input:
        run_report("all"),


rule ingest:
    input:
        run_report("ingest"),


rule process:
    input:
        run_report("process"),


rule validate_all:
    input:
        run_report("validate"),


rule options_upload:
    input:
        lambda wildcards: option_markers(),  # read the ZIPs only when this target is asked for
