# `snakemake archive`: everything the default target makes, packed with the config, the
# software versions, the git revision and a checksum manifest into a dated archive under
# archives/. Check one with `hepclust verify archives/<name>.tar.gz`.


rule archive:
    input:
        all_targets(),
    log:
        "results/logs/archive.log",
    params:
        configs=workflow.configfiles,
        checkout=workflow.basedir,
    localrule: True
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/archive_results.py"
