# UCluster anomaly detection on the dijets: prepare -> pretrain -> joint training for each
# K -> clusters of the test and evaluation samples -> background fits -> metrics -> plots.
# {events} is the training sample size (anomaly.train_events, or a smaller one of the
# significance scan), {k} the number of clusters, {seed} the training seed.


wildcard_constraints:
    events=r"\d+",
    k=r"\d+",
    seed=r"\d+",


rule prepare_anomaly:
    input:
        "results/data/dijets.parquet",
    output:
        train="results/anomaly/data/train.npz",
        test="results/anomaly/data/test.npz",
        eval="results/anomaly/data/eval.npz",
        standardizer="results/anomaly/data/standardizer.json",
    log:
        "results/logs/anomaly/prepare.log",
    benchmark:
        "results/benchmarks/anomaly/prepare/prepare.tsv"
    params:
        seed=config["seed"],
        radius=config["dijets"]["generate"]["radius"],
        settings=anomaly_settings(
            "train_events", "test_events", "eval_events", "max_particles", "mass_bins"
        ),
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/prepare_anomaly.py"


rule pretrain_anomaly:
    input:
        train="results/anomaly/data/train.npz",
    output:
        model="results/anomaly/n{events}/seed{seed}/pretrained.pt",
        history="results/anomaly/n{events}/seed{seed}/pretrain_history.json",
    log:
        "results/logs/anomaly/pretrain_n{events}_{seed}.log",
    benchmark:
        "results/benchmarks/anomaly/pretrain/n{events}_{seed}.tsv"
    params:
        checkpoints="results/anomaly/n{events}/seed{seed}/checkpoints/pretrain",
        settings=anomaly_settings(*ANOMALY_TRAINING_KEYS),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=6000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/pretrain_anomaly.py"


rule train_ucluster_anomaly:
    input:
        train="results/anomaly/data/train.npz",
        pretrained="results/anomaly/n{events}/seed{seed}/pretrained.pt",
    output:
        model="results/anomaly/n{events}/seed{seed}/k{k}/ucluster.pt",
        history="results/anomaly/n{events}/seed{seed}/k{k}/ucluster_history.json",
    log:
        "results/logs/anomaly/ucluster_n{events}_{seed}_k{k}.log",
    benchmark:
        "results/benchmarks/anomaly/ucluster/n{events}_{seed}_k{k}.tsv"
    params:
        checkpoints="results/anomaly/n{events}/seed{seed}/k{k}/checkpoints",
        settings=anomaly_settings(
            *ANOMALY_TRAINING_KEYS,
            "cluster_epochs",
            "beta",
            "alpha_start",
            "alpha_step",
            "freeze_norm",
            "cluster_space_features",
            "cluster_space_weight",
        ),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=6000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_ucluster_anomaly.py"


rule evaluate_anomaly:
    input:
        test="results/anomaly/data/test.npz",
        eval="results/anomaly/data/eval.npz",
        model="results/anomaly/n{events}/seed{seed}/k{k}/ucluster.pt",
    output:
        clusters="results/anomaly/n{events}/seed{seed}/k{k}/clusters.npz",
        summary="results/anomaly/n{events}/seed{seed}/k{k}/summary.json",
    log:
        "results/logs/anomaly/evaluate_n{events}_{seed}_k{k}.log",
    benchmark:
        "results/benchmarks/anomaly/evaluate/n{events}_{seed}_k{k}.tsv"
    params:
        eval_events=anomaly_eval_events,
        settings=anomaly_settings("batch_size", "min_cluster_events"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=6000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/evaluate_anomaly.py"


rule fit_range_anomaly:
    input:
        train="results/anomaly/data/train.npz",
    output:
        "results/anomaly/fit_range.json",
    log:
        "results/logs/anomaly/fit_range.log",
    benchmark:
        "results/benchmarks/anomaly/fit_range/fit_range.tsv"
    params:
        settings=anomaly_settings(
            "mjj_low", "mjj_high", "mjj_histogram_low", "mjj_bin_width", "fit_range_min_p"
        ),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/fit_range_anomaly.py"


rule background_fits_anomaly:
    input:
        clusters="results/anomaly/n{events}/seed{seed}/k{k}/clusters.npz",
        fit_range="results/anomaly/fit_range.json",
    output:
        "results/anomaly/n{events}/seed{seed}/k{k}/fits.json",
    log:
        "results/logs/anomaly/fits_n{events}_{seed}_k{k}.log",
    benchmark:
        "results/benchmarks/anomaly/fits/n{events}_{seed}_k{k}.tsv"
    params:
        settings=anomaly_settings(*ANOMALY_SEARCH_KEYS, "background_model"),
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/background_fits_anomaly.py"


rule inject_anomaly:
    input:
        clusters="results/anomaly/n{events}/seed{seed}/k{k}/clusters.npz",
        fits="results/anomaly/n{events}/seed{seed}/k{k}/fits.json",
        fit_range="results/anomaly/fit_range.json",
    output:
        "results/anomaly/n{events}/seed{seed}/k{k}/injection.json",
    log:
        "results/logs/anomaly/inject_n{events}_{seed}_k{k}.log",
    benchmark:
        "results/benchmarks/anomaly/inject/n{events}_{seed}_k{k}.tsv"
    params:
        settings=anomaly_settings(
            *ANOMALY_SEARCH_KEYS, "background_model", "injection_fractions"
        ),
    resources:
        mem_mb=2000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/inject_anomaly.py"


rule calibrate_anomaly:
    input:
        clusters=anomaly_scan_runs("clusters.npz"),
        summaries=anomaly_scan_runs("summary.json"),
        fit_range="results/anomaly/fit_range.json",
    output:
        "results/anomaly/calibration.json",
    log:
        "results/logs/anomaly/calibrate.log",
    benchmark:
        "results/benchmarks/anomaly/calibrate/calibrate.tsv"
    params:
        seed=config["seed"],
        settings=anomaly_settings(*ANOMALY_SEARCH_KEYS, "calibration_toys"),
    resources:
        mem_mb=2000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/calibrate_anomaly.py"


rule anomaly_metrics:
    input:
        summaries=anomaly_runs("summary.json"),
        fits=anomaly_runs("fits.json", scan=False),
        injections=anomaly_scan_runs("injection.json"),
        calibration="results/anomaly/calibration.json",
        fit_range="results/anomaly/fit_range.json",
    output:
        "results/anomaly/metrics.json",
    log:
        "results/logs/anomaly/metrics.log",
    benchmark:
        "results/benchmarks/anomaly/metrics/metrics.tsv"
    params:
        settings=anomaly_settings("train_events", "scan_clusters", "background_model"),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/anomaly_metrics.py"


rule plot_anomaly:
    input:
        metrics="results/anomaly/metrics.json",
        embedding=anomaly_clusters_file(FIGURE_CLUSTERS["embedding"]),
        features=anomaly_clusters_file(FIGURE_CLUSTERS["features"]),
        best=anomaly_clusters_file(config["anomaly"]["scan_clusters"]),
        calibration="results/anomaly/calibration.json",
        fit_range="results/anomaly/fit_range.json",
    output:
        embedding=report(
            "results/anomaly/plots/embedding.png",
            caption="../report/anomaly_embedding.rst",
            category="UCluster anomaly detection",
        ),
        max_sb=report(
            "results/anomaly/plots/max_sb.png",
            caption="../report/anomaly_max_sb.rst",
            category="UCluster anomaly detection",
        ),
        significance=report(
            "results/anomaly/plots/significance.png",
            caption="../report/anomaly_significance.rst",
            category="UCluster anomaly detection",
        ),
        mjj=report(
            "results/anomaly/plots/mjj_best_cluster.png",
            caption="../report/anomaly_mjj.rst",
            category="UCluster anomaly detection",
        ),
        fit=report(
            "results/anomaly/plots/background_fit.png",
            caption="../report/anomaly_fit.rst",
            category="UCluster anomaly detection",
        ),
        features=report(
            "results/anomaly/plots/global_features.png",
            caption="../report/anomaly_features.rst",
            category="UCluster anomaly detection",
        ),
        p_values=report(
            "results/anomaly/plots/p_values.png",
            caption="../report/anomaly_p_values.rst",
            category="UCluster anomaly detection",
        ),
        calibration=report(
            "results/anomaly/plots/calibration.png",
            caption="../report/anomaly_calibration.rst",
            category="UCluster anomaly detection",
        ),
        injection=report(
            "results/anomaly/plots/injection.png",
            caption="../report/anomaly_injection.rst",
            category="UCluster anomaly detection",
        ),
        fit_range=report(
            "results/anomaly/plots/fit_range.png",
            caption="../report/anomaly_fit_range.rst",
            category="UCluster anomaly detection",
        ),
    log:
        "results/logs/anomaly/plots.log",
    benchmark:
        "results/benchmarks/anomaly/plots/plots.tsv"
    params:
        settings=anomaly_settings("embedding_events"),
    resources:
        mem_mb=4000,
        runtime=20,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/plot_anomaly.py"


rule bench_anomaly:
    input:
        metrics="results/anomaly/metrics.json",
        benchmarks=anomaly_benchmarks(),
        histories=anomaly_histories(),
    output:
        "results/bench/anomaly.json",
    log:
        "results/logs/bench_anomaly.log",
    params:
        scan_runs=anomaly_scan_stems(),
        cores=2,  # the issue's target machine: the whole analysis on 2 CPU cores
    resources:
        mem_mb=1000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/bench_anomaly.py"
