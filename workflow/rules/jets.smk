# UCluster on the boosted jets: prepare -> pretrain -> k-means + joint training,
# a supervised ABCNet beside them, then evaluation per seed and over seeds.
# Each rule gets only the settings it reads (jet_settings), so that changing one
# reruns just the stages it affects.


rule prepare_jet_clustering:
    input:
        "results/data/jets.parquet",
    output:
        train="results/jets/data/train.npz",
        test="results/jets/data/test.npz",
        standardizer="results/jets/data/standardizer.json",
        summary="results/jets/data/summary.json",
    log:
        "results/logs/jets/prepare.log",
    benchmark:
        "results/benchmarks/jets/prepare.tsv"
    params:
        seed=config["seed"],
        settings=jet_settings("classes", "mass_window", "train_fraction", "max_particles"),
    resources:
        mem_mb=6000,
        runtime=20,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/prepare_jet_clustering.py"


rule pretrain_jets:
    input:
        train="results/jets/data/train.npz",
    output:
        model="results/jets/seed{seed}/pretrained.pt",
        history="results/jets/seed{seed}/pretrain_history.json",
    log:
        "results/logs/jets/pretrain_{seed}.log",
    benchmark:
        "results/benchmarks/jets/pretrain_{seed}.tsv"
    params:
        checkpoints="results/jets/seed{seed}/checkpoints/pretrain",
        settings=jet_settings(*JET_TRAINING_KEYS, "gamma", "pretrain_epochs"),
        device=config["device"],
        processes=config["jet_clustering"]["processes"],
    threads: config["jet_clustering"]["processes"]
    resources:
        gpu=gpus_for_jet_training,
        mem_mb=6000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/pretrain_jets.py"


rule train_ucluster_jets:
    input:
        train="results/jets/data/train.npz",
        pretrained="results/jets/seed{seed}/pretrained.pt",
    output:
        model="results/jets/seed{seed}/ucluster.pt",
        history="results/jets/seed{seed}/ucluster_history.json",
    log:
        "results/logs/jets/ucluster_{seed}.log",
    benchmark:
        "results/benchmarks/jets/ucluster_{seed}.tsv"
    params:
        checkpoints="results/jets/seed{seed}/checkpoints/ucluster",
        settings=jet_settings(
            *JET_TRAINING_KEYS,
            "gamma",
            "pretrain_epochs",
            "cluster_epochs",
            "clusters",
            "beta",
            "alpha_start",
            "alpha_step",
            "cluster_init",
            "restart_schedule",
            "freeze_norm",
            "centroid_refit_steps",
            "joint_embedding_anchor",
        ),
        device=config["device"],
        processes=config["jet_clustering"]["processes"],
    threads: config["jet_clustering"]["processes"]
    resources:
        gpu=gpus_for_jet_training,
        mem_mb=6000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_ucluster_jets.py"


rule train_supervised_jets:
    input:
        train="results/jets/data/train.npz",
    output:
        model="results/jets/seed{seed}/supervised.pt",
        history="results/jets/seed{seed}/supervised_history.json",
    log:
        "results/logs/jets/supervised_{seed}.log",
    benchmark:
        "results/benchmarks/jets/supervised_{seed}.tsv"
    params:
        checkpoints="results/jets/seed{seed}/checkpoints/supervised",
        settings=jet_settings(
            *JET_TRAINING_KEYS,
            "classes",
            "supervised_epochs",
            "supervised_embedding_size",
            "supervised_pooling",
            "supervised_dropout",
            "supervised_average_epochs",
        ),
        device=config["device"],
        processes=config["jet_clustering"]["processes"],
    threads: config["jet_clustering"]["processes"]
    resources:
        gpu=gpus_for_jet_training,
        mem_mb=6000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_supervised_jets.py"


rule evaluate_jets:
    input:
        train="results/jets/data/train.npz",
        test="results/jets/data/test.npz",
        pretrained="results/jets/seed{seed}/pretrained.pt",
        ucluster="results/jets/seed{seed}/ucluster.pt",
        supervised="results/jets/seed{seed}/supervised.pt",
    output:
        metrics="results/jets/seed{seed}/metrics.json",
        embeddings="results/jets/seed{seed}/test_embeddings.npz",
    log:
        "results/logs/jets/evaluate_{seed}.log",
    benchmark:
        "results/benchmarks/jets/evaluate_{seed}.tsv"
    params:
        settings=jet_settings(
            "batch_size", "classes", "clusters", "knn_neighbours", "tsne_jets"
        ),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=6000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/evaluate_jets.py"


rule jet_clustering_metrics:
    input:
        expand("results/jets/seed{seed}/metrics.json", seed=jet_seeds()),
    output:
        "results/jets/metrics.json",
    log:
        "results/logs/jets/metrics.log",
    benchmark:
        "results/benchmarks/jets/metrics.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/jet_clustering_metrics.py"


rule plot_jet_clustering:
    input:
        metrics="results/jets/metrics.json",
        embeddings=f"results/jets/seed{jet_seeds()[0]}/test_embeddings.npz",
    output:
        roc=report(
            "results/jets/plots/roc.png",
            caption="../report/jets_roc.rst",
            category="UCluster jets",
        ),
        tsne=report(
            "results/jets/plots/tsne.png",
            caption="../report/jets_tsne.rst",
            category="UCluster jets",
        ),
        accuracy=report(
            "results/jets/plots/accuracy.png",
            caption="../report/jets_accuracy.rst",
            category="UCluster jets",
        ),
    log:
        "results/logs/jets/plots.log",
    benchmark:
        "results/benchmarks/jets/plots.tsv"
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/plot_jet_clustering.py"
