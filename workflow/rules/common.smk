import os
from pathlib import Path

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml")


def _check_ranges():
    """What the schema cannot say: lower bounds below upper bounds."""
    pairs = (
        ("jets", "pthat_min", "pthat_max"),
        ("jets", "pt_min", "pt_max"),
    )
    for task, low, high in pairs:
        gen = config[task]["generate"]
        if gen[low] >= gen[high]:
            raise ValueError(
                f"config: {task}.generate.{low} ({gen[low]}) must be below "
                f"{task}.generate.{high} ({gen[high]})"
            )


_check_ranges()


def _check_tracking_generation():
    """What the schema cannot say about tracking.generate."""
    gen = config["tracking"]["generate"]
    if gen["source"] == "gun" and gen["pt_min"] >= gen["gun"]["pt_max"]:
        raise ValueError(
            f"config: tracking.generate.pt_min ({gen['pt_min']}) must be below "
            f"tracking.generate.gun.pt_max ({gen['gun']['pt_max']})"
        )
    if gen["source"] == "pythia" and gen["pileup"] == 0 and gen["hard_process"] == "none":
        raise ValueError("config: tracking.generate has no interaction "
                         "(pileup 0 and hard_process none)")


_check_tracking_generation()


def _check_jet_classes():
    """Generated jets are W, Z and top only: other classes need real (hls4ml) files."""
    others = [c for c in config["jet_clustering"]["classes"] if c not in JET_PROCESSES]
    if others and not config["jets"]["input"]:
        raise ValueError(
            f"config: jet_clustering.classes names {', '.join(others)}, which only real "
            f"files have (jets.input); the generated jets are {', '.join(JET_PROCESSES)}"
        )

# Rule scripts import hepclust from this checkout whatever environment runs them
# (the project venv, a conda env made by --sdm conda, a SLURM job).
SRC = str(Path(workflow.basedir) / "src")
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

JET_PROCESSES = ["W", "Z", "top"]
DIJET_PROCESSES = ["qcd", "signal"]


_check_jet_classes()


wildcard_constraints:
    shard=r"\d+",
    jet_process="|".join(JET_PROCESSES),
    dijet_process="|".join(DIJET_PROCESSES),


def _shards(n):
    return [f"{i:03d}" for i in range(n)]


def split_evenly(total, n_shards, shard):
    """Events for one shard when `total` is split over `n_shards` as evenly as possible."""
    return total // n_shards + (1 if int(shard) < total % n_shards else 0)


def _stem(path):
    name = Path(path).name
    for suffix in (".csv.gz", ".csv", ".h5", ".hdf5", ".root"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return Path(path).stem


def real_inputs(task):
    """The user's files for a task, by converted name, or {} to generate."""
    return {_stem(p): p for p in (config[task]["input"] or [])}


def jets_generated():
    gen = config["jets"]["generate"]
    return expand(
        "results/data/jets/shards/{jet_process}_{shard}.parquet",
        jet_process=JET_PROCESSES,
        shard=_shards(gen["shards"]),
    )


def signal_events():
    gen = config["dijets"]["generate"]
    f = gen["signal_fraction"]
    return round(gen["background_events"] * f / (1 - f))


def dijet_shards(process):
    gen = config["dijets"]["generate"]
    n = gen["shards"] if process == "qcd" else min(gen["shards"], max(signal_events(), 1))
    return _shards(n)


def dijets_generated():
    paths = []
    for process in DIJET_PROCESSES:
        if process == "signal" and signal_events() == 0:
            continue
        paths += expand(
            "results/data/dijets/shards/{dijet_process}_{shard}.parquet",
            dijet_process=process,
            shard=dijet_shards(process),
        )
    return paths


def task_parts(task):
    """Parquet files that merge into one task's table: converted real files or shards."""
    real = real_inputs(task)
    if real:
        return expand("results/data/{task}/converted/{name}.parquet", task=task, name=real)
    return jets_generated() if task == "jets" else dijets_generated()


def conversion_summaries(task):
    """What converting each real file of a task read and left out ([] when generated)."""
    return expand("results/data/{task}/converted/{name}.json", task=task, name=real_inputs(task))


def merge_jets_input(wildcards):
    return task_parts("jets")


def merge_dijets_input(wildcards):
    return task_parts("dijets")


def converted_source(wildcards):
    return real_inputs(wildcards.task)[wildcards.name]


def generation_stats(task):
    if real_inputs(task):
        return []
    parts = jets_generated() if task == "jets" else dijets_generated()
    return [p.replace(".parquet", ".json") for p in parts]


def jet_events(wildcards):
    gen = config["jets"]["generate"]
    return split_evenly(gen["jets_per_class"], gen["shards"], wildcards.shard)


def dijet_events(wildcards):
    gen = config["dijets"]["generate"]
    shards = dijet_shards(wildcards.dijet_process)
    total = gen["background_events"] if wildcards.dijet_process == "qcd" else signal_events()
    return split_evenly(total, len(shards), wildcards.shard)


def tracking_shard_events(wildcards):
    """Event numbers (from 1) that one simulation shard makes."""
    gen = config["tracking"]["generate"]
    shard = int(wildcards.shard)
    first = sum(split_evenly(gen["events"], gen["shards"], i) for i in range(shard))
    n = split_evenly(gen["events"], gen["shards"], shard)
    return [first + 1, first + n + 1]


def tracking_event_sources(wildcards):
    """The user's TrackML events (files or directories), or the simulated shards."""
    paths = config["tracking"]["input"]
    if paths:
        return [_event_files(p) for p in paths]
    return expand(
        "results/data/tracking/csv/{shard}",
        shard=_shards(config["tracking"]["generate"]["shards"]),
    )


def _event_files(path):
    """A directory stays itself; an event prefix or file becomes its hits file."""
    path = Path(path)
    if path.is_dir():
        return str(path)
    prefix = path.name.split("-")[0]
    hits = sorted(path.parent.glob(f"{prefix}-hits.csv*"))
    return str(hits[0]) if hits else f"{path.parent / prefix}-hits.csv"


def tracking_stats():
    if config["tracking"]["input"]:
        return []
    shards = _shards(config["tracking"]["generate"]["shards"])
    return expand("results/data/tracking/shards/{shard}.json", shard=shards)


def jet_seeds():
    """The training seeds of the jets analysis, derived from the master seed."""
    return [config["seed"] * 100 + i for i in range(config["jet_clustering"]["seeds"])]


JET_TRAINING_KEYS = ["neighbours", "embedding_size", "pooling", "batch_size", "lr",
                     "lr_halving_epochs", "lr_min", "precise_norm_statistics"]


def section_settings(section, *keys):
    """The keys of a config section that a stage reads, as a params entry that changes only
    with them, so Snakemake reruns only the stages a changed key affects."""
    return {key: config[section][key] for key in keys}


def jet_settings(*keys):
    return section_settings("jet_clustering", *keys)


ANOMALY_SEARCH_KEYS = ["signal_width", "mass_step", "trials_toys", "trials_threshold",
                       "min_fit_events"]
ANOMALY_TRAINING_KEYS = ["neighbours", "embedding_size", "pooling", "mass_bins", "batch_size",
                         "lr", "lr_halving_epochs", "lr_min", "gamma", "pretrain_epochs"]


def anomaly_settings(*keys):
    return section_settings("anomaly", *keys)


def tracking_settings(*keys):
    return section_settings("tracking_clustering", *keys)


def gpus_for_training(wildcards):
    """Training and inference take a GPU when the configured device is one."""
    return 1 if config["device"].startswith("cuda") else 0


def gpus_for_jet_training(wildcards):
    """A jets training job takes one GPU per training process when the device is one."""
    return config["jet_clustering"]["processes"] * gpus_for_training(wildcards)


def all_targets():
    return [
        "results/data/jets.parquet",
        "results/data/dijets.parquet",
        "results/data/summary.json",
        "results/data/plots/jet_mass.png",
        "results/data/plots/mjj.png",
        "results/data/plots/dijet_jets.png",
        "results/data/tracking/hits.parquet",
        "results/data/tracking/summary.json",
        "results/data/plots/tracking_event.png",
        "results/data/plots/tracking_validation.png",
        "results/jets/metrics.json",
        "results/jets/plots/roc.png",
        "results/anomaly/metrics.json",
        "results/anomaly/plots/max_sb.png",
        "results/tracking/metrics.json",
        "results/tracking/plots/scores.png",
        "results/tracking/plots/scaling.png",
        "results/summary.html",
    ]


# The anomaly search (workflow/rules/anomaly.smk).

# The paper's K for Fig. 6 (a two-dimensional embedding, two clusters) and Fig. 10.
FIGURE_CLUSTERS = {"embedding": 2, "features": 5}


def _check_anomaly():
    """What the schema cannot say about the anomaly section."""
    anomaly = config["anomaly"]
    if anomaly["scan_clusters"] not in anomaly["clusters"]:
        raise ValueError(
            f"config: anomaly.scan_clusters ({anomaly['scan_clusters']}) must be one of "
            f"anomaly.clusters {anomaly['clusters']}"
        )
    low = anomaly["mjj_low"]
    if not anomaly["mjj_histogram_low"] <= (low or anomaly["mjj_histogram_low"]) < anomaly["mjj_high"]:
        raise ValueError(
            f"config: need anomaly.mjj_histogram_low ({anomaly['mjj_histogram_low']}) <= "
            f"anomaly.mjj_low ({low}) < anomaly.mjj_high ({anomaly['mjj_high']})"
        )
    for events in anomaly["scan_train_events"]:
        if not events < anomaly["train_events"]:
            raise ValueError(
                f"config: anomaly.scan_train_events ({events}) must be below "
                f"anomaly.train_events ({anomaly['train_events']})"
            )


_check_anomaly()


def anomaly_seeds():
    """The training seeds of the anomaly search, derived from the master seed."""
    return [config["seed"] * 100 + 50 + i for i in range(config["anomaly"]["seeds"])]


def anomaly_nearest_k(k):
    """The configured number of clusters nearest `k` (a figure's K when `k` is not run)."""
    return min(config["anomaly"]["clusters"], key=lambda c: (abs(c - k), c))


def anomaly_clusters_file(k):
    """The evaluated clusters of the first seed, full training sample, K nearest `k`."""
    n, seed = config["anomaly"]["train_events"], anomaly_seeds()[0]
    return f"results/anomaly/n{n}/seed{seed}/k{anomaly_nearest_k(k)}/clusters.npz"


def _anomaly_trainings(scan=True):
    """(training events, seed, K) of every clustering: each K on the full training sample,
    and the scan's K on each smaller one."""
    anomaly = config["anomaly"]
    runs = [(anomaly["train_events"], s, k) for s in anomaly_seeds() for k in anomaly["clusters"]]
    if scan:
        runs += [
            (n, s, anomaly["scan_clusters"])
            for n in anomaly["scan_train_events"]
            for s in anomaly_seeds()
        ]
    return runs


def anomaly_runs(name, scan=True):
    return [f"results/anomaly/n{n}/seed{s}/k{k}/{name}" for n, s, k in _anomaly_trainings(scan)]


def anomaly_scan_runs(name):
    """`name` in each seed's clustering at K = scan_clusters on the full training sample."""
    anomaly = config["anomaly"]
    n, k = anomaly["train_events"], anomaly["scan_clusters"]
    return [f"results/anomaly/n{n}/seed{s}/k{k}/{name}" for s in anomaly_seeds()]


def anomaly_scan_stems():
    """The benchmark file stems (n<events>_<seed>_k<K>) of the clusterings that
    `anomaly_scan_runs` names: the calibration's inputs, for the time estimate."""
    anomaly = config["anomaly"]
    n, k = anomaly["train_events"], anomaly["scan_clusters"]
    return [f"n{n}_{s}_k{k}" for s in anomaly_seeds()]


def anomaly_eval_events(wildcards):
    """Evaluation events of a training sample: the same share of the evaluation split as of
    the training split (the same size as the paper's, where the two splits are equal)."""
    anomaly = config["anomaly"]
    share = int(wildcards.events) / anomaly["train_events"]
    return max(1, round(anomaly["eval_events"] * share))


def anomaly_histories():
    pretrained = {(n, s) for n, s, _ in _anomaly_trainings()}
    return [
        f"results/anomaly/n{n}/seed{s}/pretrain_history.json" for n, s in sorted(pretrained)
    ] + anomaly_runs("ucluster_history.json")


def jets_benchmarks():
    """Every benchmark file of the jets analysis's jobs, for results/bench/jets.json."""
    base = "results/benchmarks/jets"
    return (
        [f"{base}/prepare.tsv"]
        + [
            f"{base}/{stage}_{seed}.tsv"
            for stage in ("pretrain", "ucluster", "supervised", "evaluate")
            for seed in jet_seeds()
        ]
        + [f"{base}/metrics.tsv", f"{base}/plots.tsv"]
    )


def anomaly_benchmarks():
    """Every benchmark file of the anomaly stages, for results/bench/anomaly.json."""
    trainings = _anomaly_trainings()
    pretrained = sorted({(n, s) for n, s, _ in trainings})
    base = "results/benchmarks/anomaly"
    return (
        [f"{base}/prepare/prepare.tsv"]
        + [f"{base}/pretrain/n{n}_{s}.tsv" for n, s in pretrained]
        + [f"{base}/{stage}/n{n}_{s}_k{k}.tsv" for stage in ("ucluster", "evaluate") for n, s, k in trainings]
        + [f"{base}/fits/n{n}_{s}_k{k}.tsv" for n, s, k in _anomaly_trainings(scan=False)]
        + [
            f"{base}/inject/n{config['anomaly']['train_events']}_{s}_k{config['anomaly']['scan_clusters']}.tsv"
            for s in anomaly_seeds()
        ]
        + [
            f"{base}/fit_range/fit_range.tsv",
            f"{base}/calibrate/calibrate.tsv",
            f"{base}/metrics/metrics.tsv",
            f"{base}/plots/plots.tsv",
        ]
    )


def tracking_graph_inputs(wildcards):
    """What the GNN and clustering stages of the tracking analysis build their events from."""
    return {
        "hits": "results/data/tracking/hits.parquet",
        "particles": "results/data/tracking/particles.parquet",
        "split": "results/tracking/data/split.json",
        "embedding": "results/tracking/models/embedding.pt",
        "candidates": "results/tracking/graphs/embedding.pt",
        "refined": "results/tracking/graphs/refined.pt",
        "union_order": ("results/tracking/graphs/refined_link_scores.pt"
                        if config["tracking_clustering"]["links"]["enabled"]
                        else "results/tracking/graphs/refined_probabilities.pt"),
    }


def filter_model():
    """The edge filter, where the config turns it on."""
    if config["tracking_clustering"]["filter"]["enabled"]:
        return {"edge_filter": "results/tracking/models/filter.pt"}
    return {}


def filter_summaries():
    """The edge filter's training history and its graphs' rows, where the config turns
    it on."""
    if config["tracking_clustering"]["filter"]["enabled"]:
        return {"filter_history": "results/tracking/models/filter_history.json",
                "filtered_edges": "results/tracking/graphs/filtered_edges.json"}
    return {}


def refinement_candidates():
    """The graphs the refinement trains on and refines: the candidate graphs, filtered
    where the config turns the filter on."""
    if config["tracking_clustering"]["filter"]["enabled"]:
        return "results/tracking/graphs/filtered.pt"
    return "results/tracking/graphs/embedding.pt"


def link_model():
    """The link scorer, the union's order, where the config turns it on."""
    if config["tracking_clustering"]["links"]["enabled"]:
        return {"links": "results/tracking/models/links.pt"}
    return {}


def tracked_models(wildcards):
    """The trained tracking pipeline: embedding, (where on) the edge filter, refinement,
    the fine-tuned GNN, Split and Stop, the layer pairs and (where on) the link scorer."""
    return {
        "embedding": "results/tracking/models/embedding.pt",
        "refinement": "results/tracking/models/refinement.pt",
        "gnn": "results/tracking/models/gnn_tuned.pt",
        "split_model": "results/tracking/models/split_tuned.pt",
        "stop": "results/tracking/models/stop_tuned.pt",
        "layer_pairs": "results/tracking/models/layer_pairs.pt",
        **link_model(),
        **filter_model(),
    }


def _check_tracking_clustering():
    """What the schema cannot say about the tracking_clustering section."""
    settings = config["tracking_clustering"]
    if settings["graph"]["k"] is None and settings["graph"]["radius"] is None:
        raise ValueError("config: tracking_clustering.graph needs k, radius or both")
    for name, events in (("embedding_events", settings["embedding_events"]),
                         ("filter.events", settings["filter"]["events"]),
                         ("refinement.events", settings["refinement"]["events"])):
        if events > settings["train_events"]:
            raise ValueError(
                f"config: tracking_clustering.{name} ({events}) must not exceed "
                f"tracking_clustering.train_events ({settings['train_events']})"
            )
    hierarchical = settings["hierarchical"]
    if hierarchical["initial"] == "resplit" and hierarchical["edge_threshold"] is not None:
        raise ValueError(
            "config: tracking_clustering.hierarchical.initial resplit re-splits the refined "
            "graph; set edge_threshold to null"
        )
    thresholds = hierarchical["resplit"]["thresholds"]
    if thresholds != sorted(thresholds):
        raise ValueError(
            f"config: tracking_clustering.hierarchical.resplit.thresholds must increase, "
            f"not {thresholds}"
        )
    wanted = settings["train_events"] + settings["test_events"]
    simulated = config["tracking"]["generate"]["events"]
    if not config["tracking"]["input"] and wanted > simulated:
        raise ValueError(
            f"config: tracking_clustering.train_events + test_events ({wanted}) exceed the "
            f"{simulated} simulated events (tracking.generate.events)"
        )


_check_tracking_clustering()
