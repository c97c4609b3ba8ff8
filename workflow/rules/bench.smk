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


rule bench_jets:
    input:
        model=f"results/jets/seed{jet_seeds()[0]}/ucluster.pt",
        test="results/jets/data/test.npz",
        histories=expand(
            "results/jets/seed{seed}/{stage}_history.json",
            seed=jet_seeds(),
            stage=["pretrain", "ucluster", "supervised"],
        ),
        benchmarks=jets_benchmarks(),
    output:
        "results/bench/jets.json",
    params:
        batch_size=config["jet_clustering"]["batch_size"],
        pooling=config["jet_clustering"]["pooling"],
        cores=2,  # the issue's target machine: the whole analysis on 2 CPU cores
    log:
        "results/logs/bench_jets.log",
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/bench_jets.py"


rule bench:
    input:
        "results/bench/data.json",
        "results/bench/tracking_data.json",
        "results/bench/jets.json",
        "results/bench/anomaly.json",
        "results/bench/tracking_scaling.json",
