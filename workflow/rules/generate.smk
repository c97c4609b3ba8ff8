rule generate_jets:
    output:
        table="results/data/jets/shards/{jet_process}_{shard}.parquet",
        stats="results/data/jets/shards/{jet_process}_{shard}.json",
    log:
        "results/logs/generate_jets/{jet_process}_{shard}.log",
    benchmark:
        "results/benchmarks/generate_jets/{jet_process}_{shard}.tsv"
    params:
        n_jets=jet_events,
        seed=config["seed"],
        settings=config["jets"]["generate"],
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/generate_jets.py"


rule generate_dijets:
    output:
        table="results/data/dijets/shards/{dijet_process}_{shard}.parquet",
        stats="results/data/dijets/shards/{dijet_process}_{shard}.json",
    log:
        "results/logs/generate_dijets/{dijet_process}_{shard}.log",
    benchmark:
        "results/benchmarks/generate_dijets/{dijet_process}_{shard}.tsv"
    params:
        n_events=dijet_events,
        seed=config["seed"],
        settings=config["dijets"]["generate"],
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/generate_dijets.py"


rule simulate_tracking:
    output:
        events=directory("results/data/tracking/csv/{shard}"),
        stats="results/data/tracking/shards/{shard}.json",
    log:
        "results/logs/simulate_tracking/{shard}.log",
    benchmark:
        "results/benchmarks/simulate_tracking/{shard}.tsv"
    params:
        event_range=tracking_shard_events,
        seed=config["seed"],
        settings=config["tracking"]["generate"],
    resources:
        mem_mb=3000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/simulate_tracking.py"
