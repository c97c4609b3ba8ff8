rule plot_jets:
    input:
        "results/data/jets.parquet",
    output:
        report(
            "results/data/plots/jet_mass.png",
            caption="../report/jet_mass.rst",
            category="Data",
            subcategory="Boosted jets",
        ),
    log:
        "results/logs/plot_jets.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/plot_jets.py"


rule plot_dijets:
    input:
        "results/data/dijets.parquet",
    output:
        mjj=report(
            "results/data/plots/mjj.png",
            caption="../report/mjj.rst",
            category="Data",
            subcategory="Dijets",
        ),
        jets=report(
            "results/data/plots/dijet_jets.png",
            caption="../report/dijet_jets.rst",
            category="Data",
            subcategory="Dijets",
        ),
    log:
        "results/logs/plot_dijets.log",
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/plot_dijets.py"


rule summarize_data:
    input:
        jets="results/data/jets.parquet",
        dijets="results/data/dijets.parquet",
        jet_conversions=conversion_summaries("jets"),
        dijet_conversions=conversion_summaries("dijets"),
    output:
        "results/data/summary.json",
    log:
        "results/logs/summarize_data.log",
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/summarize_data.py"


rule plot_tracking:
    input:
        hits="results/data/tracking/hits.parquet",
        particles="results/data/tracking/particles.parquet",
    output:
        event=report(
            "results/data/plots/tracking_event.png",
            caption="../report/tracking_event.rst",
            category="Data",
            subcategory="Tracking events",
        ),
        validation=report(
            "results/data/plots/tracking_validation.png",
            caption="../report/tracking_validation.rst",
            category="Data",
            subcategory="Tracking events",
        ),
    log:
        "results/logs/plot_tracking.log",
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/plot_tracking.py"


rule summarize_tracking:
    input:
        hits="results/data/tracking/hits.parquet",
        particles="results/data/tracking/particles.parquet",
        stats=tracking_stats(),
    output:
        "results/data/tracking/summary.json",
    log:
        "results/logs/summarize_tracking.log",
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/summarize_tracking.py"
