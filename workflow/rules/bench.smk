rule bench_data:
    input:
        jets="results/data/jets.parquet",
        jet_stats=generation_stats("jets"),
        dijet_stats=generation_stats("dijets"),
    output:
        "results/bench/data.json",
    log:
        "results/logs/bench_data.log",
    resources:
        mem_mb=4000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/bench_data.py"


rule bench_tracking_data:
    output:
        "results/bench/tracking_data.json",
    log:
        "results/logs/bench_tracking_data.log",
    params:
        seed=config["seed"],
        settings=config["tracking"]["generate"],
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/bench_tracking_data.py"


rule bench:
    input:
        "results/bench/data.json",
        "results/bench/tracking_data.json",
