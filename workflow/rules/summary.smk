# The report's first page: headline metrics of the three analyses beside the papers',
# the configuration and the software versions.


rule headline_summary:
    input:
        jets="results/jets/metrics.json",
        anomaly="results/anomaly/metrics.json",
        tracking="results/tracking/metrics.json",
    output:
        report(
            "results/summary.html",
            caption="../report/summary.rst",
            category="Summary",
        ),
    log:
        "results/logs/summary.log",
    params:
        config=config,
    resources:
        mem_mb=1000,
        runtime=5,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/headline_summary.py"
