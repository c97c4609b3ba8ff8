from snakemake.utils import min_version

min_version("9.0")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/generate.smk"
include: "workflow/rules/convert.smk"
include: "workflow/rules/plots.smk"
include: "workflow/rules/jets.smk"
include: "workflow/rules/anomaly.smk"
include: "workflow/rules/tracking.smk"
include: "workflow/rules/bench.smk"
include: "workflow/rules/archive.smk"
include: "workflow/rules/summary.smk"


rule all:
    input:
        all_targets(),
    default_target: True
