rule convert_real_input:
    input:
        converted_source,
    output:
        table="results/data/{task}/converted/{name}.parquet",
        summary="results/data/{task}/converted/{name}.json",
    log:
        "results/logs/convert/{task}/{name}.log",
    params:
        max_events=config["max_events_per_file"],
    resources:
        mem_mb=4000,
        runtime=120,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/convert.py"


rule merge_jets:
    input:
        merge_jets_input,
    output:
        "results/data/jets.parquet",
    log:
        "results/logs/merge_jets.log",
    params:
        seed=config["seed"],
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/merge_jets.py"


rule merge_dijets:
    input:
        merge_dijets_input,
    output:
        "results/data/dijets.parquet",
    log:
        "results/logs/merge_dijets.log",
    params:
        seed=config["seed"],
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/merge_dijets.py"


rule merge_tracking:
    input:
        tracking_event_sources,
    output:
        hits="results/data/tracking/hits.parquet",
        particles="results/data/tracking/particles.parquet",
    log:
        "results/logs/merge_tracking.log",
    params:
        seed=config["seed"],
        subsample_fraction=config["tracking"]["subsample_fraction"],
    resources:
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/merge_tracking.py"
