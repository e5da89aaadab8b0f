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


rule all:
    input:
        serving_marker(),


rule ingest:
    input:
        fetch_markers(),


rule process:
    input:
        bucket_files(),


rule validate_all:
    input:
        validate_reports(),


rule options_upload:
    input:
        option_markers(),
