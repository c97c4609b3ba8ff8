# The clustering GNN on the tracking events (Choma's thesis, chapters 2-3): split the
# events -> metric learning -> candidate graphs -> edge filter -> edge refinement -> GNN -> Split, Stop
# -> end-to-end fine tuning -> inference and scoring on the held-out events -> the
# alternatives on the same events -> metrics, plots and the scaling benchmark.

TRACKING_HITS = "results/data/tracking/hits.parquet"
TRACKING_PARTICLES = "results/data/tracking/particles.parquet"


rule split_tracking_events:
    input:
        hits=TRACKING_HITS,
    output:
        "results/tracking/data/split.json",
    log:
        "results/logs/tracking/split.log",
    params:
        seed=config["seed"],
        settings=tracking_settings("train_events", "test_events"),
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/split_tracking_events.py"


rule train_tracking_embedding:
    input:
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        split="results/tracking/data/split.json",
    output:
        model="results/tracking/models/embedding.pt",
        history="results/tracking/models/embedding_history.json",
    log:
        "results/logs/tracking/train_embedding.log",
    benchmark:
        "results/benchmarks/tracking/train_embedding.tsv"
    params:
        seed=config["seed"],
        settings=tracking_settings("embedding_events", "embedding"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=8000,
        runtime=120,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_tracking_embedding.py"


rule build_tracking_graphs:
    input:
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        split="results/tracking/data/split.json",
        embedding="results/tracking/models/embedding.pt",
    output:
        graphs="results/tracking/graphs/embedding.pt",
        edges="results/tracking/graphs/embedding_edges.json",
        layer_pairs="results/tracking/models/layer_pairs.pt",
    log:
        "results/logs/tracking/build_graphs.log",
    benchmark:
        "results/benchmarks/tracking/build_graphs.tsv"
    params:
        settings=tracking_settings("graph", "filter", "refinement"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/build_tracking_graphs.py"


rule train_tracking_filter:
    input:
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        split="results/tracking/data/split.json",
        graphs="results/tracking/graphs/embedding.pt",
    output:
        model="results/tracking/models/filter.pt",
        history="results/tracking/models/filter_history.json",
        graphs="results/tracking/graphs/filtered.pt",
        edges="results/tracking/graphs/filtered_edges.json",
    log:
        "results/logs/tracking/train_filter.log",
    benchmark:
        "results/benchmarks/tracking/train_filter.tsv"
    params:
        seed=config["seed"],
        settings=config["tracking_clustering"]["filter"],
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_tracking_filter.py"


rule train_tracking_refinement:
    input:
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        split="results/tracking/data/split.json",
        graphs=refinement_candidates(),
    output:
        model="results/tracking/models/refinement.pt",
        history="results/tracking/models/refinement_history.json",
    log:
        "results/logs/tracking/train_refinement.log",
    benchmark:
        "results/benchmarks/tracking/train_refinement.tsv"
    params:
        seed=config["seed"],
        settings=tracking_settings("refinement"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=12000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_tracking_refinement.py"


rule refine_tracking_graphs:
    input:
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        split="results/tracking/data/split.json",
        graphs=refinement_candidates(),
        refinement="results/tracking/models/refinement.pt",
    output:
        graphs="results/tracking/graphs/refined.pt",
        probabilities="results/tracking/graphs/refined_probabilities.pt",
        edges="results/tracking/graphs/refined_edges.json",
    log:
        "results/logs/tracking/refine_graphs.log",
    benchmark:
        "results/benchmarks/tracking/refine_graphs.tsv"
    params:
        threshold=config["tracking_clustering"]["refinement"]["threshold"],
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/refine_tracking_graphs.py"


rule train_tracking_links:
    input:
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        split="results/tracking/data/split.json",
        refined="results/tracking/graphs/refined.pt",
        probabilities="results/tracking/graphs/refined_probabilities.pt",
    output:
        model="results/tracking/models/links.pt",
        history="results/tracking/models/links_history.json",
        scores="results/tracking/graphs/refined_link_scores.pt",
    log:
        "results/logs/tracking/train_links.log",
    benchmark:
        "results/benchmarks/tracking/train_links.tsv"
    params:
        seed=config["seed"],
        links=config["tracking_clustering"]["links"],
    resources:
        mem_mb=8000,
        runtime=30,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_tracking_links.py"


rule train_tracking_gnn:
    input:
        unpack(tracking_graph_inputs),
    output:
        model="results/tracking/models/gnn.pt",
        history="results/tracking/models/gnn_history.json",
    log:
        "results/logs/tracking/train_gnn.log",
    benchmark:
        "results/benchmarks/tracking/train_gnn.tsv"
    params:
        seed=config["seed"],
        settings=tracking_settings("gnn", "hierarchical"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=12000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_tracking_gnn.py"


rule train_tracking_split:
    input:
        unpack(tracking_graph_inputs),
        gnn="results/tracking/models/gnn.pt",
    output:
        model="results/tracking/models/split.pt",
        history="results/tracking/models/split_history.json",
    log:
        "results/logs/tracking/train_split.log",
    benchmark:
        "results/benchmarks/tracking/train_split.tsv"
    params:
        seed=config["seed"],
        settings=tracking_settings("hierarchical"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=12000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_tracking_split.py"


rule train_tracking_stop:
    input:
        unpack(tracking_graph_inputs),
        gnn="results/tracking/models/gnn.pt",
        split_model="results/tracking/models/split.pt",
    output:
        model="results/tracking/models/stop.pt",
        history="results/tracking/models/stop_history.json",
    log:
        "results/logs/tracking/train_stop.log",
    benchmark:
        "results/benchmarks/tracking/train_stop.tsv"
    params:
        seed=config["seed"],
        settings=tracking_settings("hierarchical"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=12000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/train_tracking_stop.py"


rule fine_tune_tracking:
    input:
        unpack(tracking_graph_inputs),
        gnn="results/tracking/models/gnn.pt",
        split_model="results/tracking/models/split.pt",
        stop="results/tracking/models/stop.pt",
    output:
        gnn="results/tracking/models/gnn_tuned.pt",
        split_model="results/tracking/models/split_tuned.pt",
        stop="results/tracking/models/stop_tuned.pt",
        history="results/tracking/models/end_to_end_history.json",
        stop_history="results/tracking/models/stop_tuned_history.json",
    log:
        "results/logs/tracking/fine_tune.log",
    benchmark:
        "results/benchmarks/tracking/fine_tune.tsv"
    params:
        seed=config["seed"],
        settings=tracking_settings("end_to_end", "gnn", "hierarchical"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=12000,
        runtime=240,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/fine_tune_tracking.py"


rule infer_tracking:
    input:
        unpack(tracked_models),
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        split="results/tracking/data/split.json",
    output:
        results="results/tracking/test/results.json",
        outputs="results/tracking/test/outputs.pt",
        submissions=directory("results/tracking/submissions"),
    log:
        "results/logs/tracking/infer.log",
    benchmark:
        "results/benchmarks/tracking/infer.tsv"
    params:
        settings=tracking_settings("graph", "filter", "refinement", "hierarchical"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/infer_tracking.py"


rule tracking_baselines:
    input:
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        split="results/tracking/data/split.json",
        outputs="results/tracking/test/outputs.pt",
        embedding="results/tracking/models/embedding.pt",
        refinement="results/tracking/models/refinement.pt",
        gnn="results/tracking/models/gnn.pt",
        split_model="results/tracking/models/split.pt",
        stop="results/tracking/models/stop.pt",
        layer_pairs="results/tracking/models/layer_pairs.pt",
        **link_model(),
        **filter_model(),
    output:
        "results/tracking/test/baselines.json",
    log:
        "results/logs/tracking/baselines.log",
    benchmark:
        "results/benchmarks/tracking/baselines.tsv"
    params:
        settings=tracking_settings("baselines", "graph", "filter", "refinement", "hierarchical"),
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=8000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/tracking_baselines.py"


rule tracking_clustering_metrics:
    input:
        results="results/tracking/test/results.json",
        baselines="results/tracking/test/baselines.json",
        embedding_edges="results/tracking/graphs/embedding_edges.json",
        refined_edges="results/tracking/graphs/refined_edges.json",
        **filter_summaries(),
        histories=expand(
            "results/tracking/models/{stage}_history.json",
            stage=[
                "embedding",
                "refinement",
                "gnn",
                "split",
                "stop",
                "end_to_end",
                "stop_tuned",
            ],
        ),
    output:
        "results/tracking/metrics.json",
    log:
        "results/logs/tracking/metrics.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/tracking_clustering_metrics.py"


rule plot_tracking_clustering:
    input:
        metrics="results/tracking/metrics.json",
        split="results/tracking/data/split.json",
        hits=TRACKING_HITS,
        particles=TRACKING_PARTICLES,
        submissions="results/tracking/submissions",
    output:
        scores=report(
            "results/tracking/plots/scores.png",
            caption="../report/tracking_scores.rst",
            category="Tracking clustering GNN",
        ),
        rates=report(
            "results/tracking/plots/rates.png",
            caption="../report/tracking_rates.rst",
            category="Tracking clustering GNN",
        ),
        event=report(
            "results/tracking/plots/event_tracks.png",
            caption="../report/tracking_event_tracks.rst",
            category="Tracking clustering GNN",
        ),
    log:
        "results/logs/tracking/plots.log",
    resources:
        mem_mb=4000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/plot_tracking_clustering.py"


rule bench_tracking_scaling:
    input:
        unpack(tracked_models),
    output:
        "results/bench/tracking_scaling.json",
    log:
        "results/logs/bench_tracking_scaling.log",
    params:
        seed=config["seed"],
        settings=tracking_settings("scaling", "graph", "filter", "refinement", "hierarchical"),
        generate=config["tracking"]["generate"],
        device=config["device"],
    resources:
        gpu=gpus_for_training,
        mem_mb=16000,
        runtime=60,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/bench_tracking_scaling.py"


rule plot_tracking_scaling:
    input:
        "results/bench/tracking_scaling.json",
    output:
        report(
            "results/tracking/plots/scaling.png",
            caption="../report/tracking_scaling.rst",
            category="Tracking clustering GNN",
        ),
    log:
        "results/logs/tracking/plot_scaling.log",
    resources:
        mem_mb=2000,
        runtime=10,
    conda:
        "../../envs/hepclust.yaml"
    script:
        "../scripts/plot_tracking_scaling.py"
