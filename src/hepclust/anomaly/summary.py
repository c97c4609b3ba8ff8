"""The numbers of the anomaly search (PRD 103, 092007, Sec. VI, Figs. 7-9): each
clustering's signal-to-background table, and `combine`, which gathers every clustering and
background estimate into ``results/anomaly/metrics.json``.

Signal-to-background ratios and significances are those of the evaluation sample; the
"best" cluster is the one with the highest S/B among clusters of at least `min_events`
events (so that a handful of events cannot make an infinite ratio).
"""

import numpy as np

from hepclust.anomaly.clusters import best_cluster, signal_to_background, significance

# What the paper shows: S/B from 1% to about 28% (Fig. 7 left, averaged over trainings).
PAPER = {"inclusive_sb": 0.01, "max_sb_at_30_clusters": 0.28}
P_VALUE_THRESHOLD = 0.05


def clustering_summary(labels: np.ndarray, clusters: np.ndarray, k: int, min_events: int,
                       test_labels: np.ndarray | None = None,
                       test_clusters: np.ndarray | None = None) -> dict:
    """S/B of every cluster, the best one and, when test assignments are given, the
    evaluation S/B of the cluster that is best on the test sample (an unbiased choice)."""
    rows = signal_to_background(labels, clusters, k)
    best = best_cluster(rows, min_events)
    signal, background = int((labels == 1).sum()), int((labels == 0).sum())
    summary = {
        "k": k, "events": len(labels), "signal": signal, "background": background,
        "inclusive_sb": signal / background if background else None,
        "inclusive_significance": significance(signal, background) if background else None,
        "rows": rows, "best_cluster": best, "max_sb": rows[best]["ratio"],
        "max_significance": rows[best]["significance"], "min_events": min_events,
    }
    if test_labels is not None and test_clusters is not None:
        chosen = best_cluster(signal_to_background(test_labels, test_clusters, k), min_events)
        summary.update(test_best_cluster=chosen, sb_of_test_best=rows[chosen]["ratio"])
    return summary


def spread(values: list) -> dict:
    """Mean and standard deviation over seeds of the finite values (None if none)."""
    finite = [v for v in values if v is not None and np.isfinite(v)]
    return {"mean": float(np.mean(finite)) if finite else None,
            "std": float(np.std(finite)) if finite else None,
            "values": values, "missing": len(values) - len(finite)}


def _fit_outcome(fits: dict, max_sb_cluster: int) -> dict:
    signal, background_only = fits["signal"], fits["background_only"]
    row = signal["clusters"][max_sb_cluster]
    return {
        "k": fits["k"], "seed": fits["seed"], "max_sb_cluster": max_sb_cluster,
        "lowest_global_p_cluster": signal["lowest_global_p_cluster"],
        "lowest_global_p_cluster_is_max_sb": signal["lowest_global_p_cluster"] == max_sb_cluster,
        "signal_cluster_global_p": row["global_p"], "signal_cluster_local_p": row["local_p"],
        "signal_cluster_mass": row["mass"],
        "global_p_over_clusters": signal["global_p_over_clusters"],
        "valid_clusters": signal["valid_clusters"], "failed_clusters": signal["failed_clusters"],
        "background_only_p_values": [r["global_p"] for r in background_only["clusters"]
                                     if r["valid"]],
        "background_only_failed": background_only["failed_clusters"],
        "signal": signal, "background_only": background_only,
    }


def _below(p_values: list[float]) -> float | None:
    return float(np.mean(np.array(p_values) < P_VALUE_THRESHOLD)) if p_values else None


def _injection(injections: list[dict]) -> tuple[dict, dict]:
    """{fraction: mean global significance over seeds} and each seed's points."""
    by_fraction: dict[str, list] = {}
    for run in injections:
        for point in run["points"]:
            by_fraction.setdefault(str(point["fraction"]), []).append(
                point["global_significance"])
    mean = {fraction: spread(values)["mean"] for fraction, values in by_fraction.items()}
    return mean, {str(run["seed"]): run["points"] for run in injections}


def combine(runs: list[dict], fits: list[dict], train_events: int, scan_clusters: int,
            calibration: dict, injections: list[dict], fit_range: dict,
            background_model: str) -> dict:
    """metrics.json from every clustering summary (`runs`, each with ``train_events`` and
    ``seed`` added), every search (`fits`, those of the full training sample, each
    {"k", "seed", "signal": search, "background_only": search}), the `calibration` of the
    models on independent toys, the `injections` (one per seed at K = `scan_clusters`), the
    `fit_range`, and the configured `background_model`."""
    main = [run for run in runs if run["train_events"] == train_events]
    if not main:
        raise ValueError(f"no clustering trained on the full {train_events} events")
    ks = sorted({run["k"] for run in main})
    by_k = {str(k): [run for run in main if run["k"] == k] for k in ks}
    over_seeds = {k: spread([run["max_sb"] for run in chosen]) for k, chosen in by_k.items()}
    test_chosen = {k: spread([run.get("sb_of_test_best") for run in chosen])
                   for k, chosen in by_k.items()}

    scan = []
    for events in sorted({run["train_events"] for run in runs}):
        chosen = [run for run in runs
                  if run["train_events"] == events and run["k"] == scan_clusters]
        if chosen:
            scan.append({"train_events": events, "eval_events": chosen[0]["events"],
                         "inclusive_significance": chosen[0]["inclusive_significance"],
                         "max_significance": spread([run["max_significance"]
                                                     for run in chosen])})

    best_of = {(run["k"], run["seed"]): run["best_cluster"] for run in main}
    outcomes = [_fit_outcome(fit, best_of[(fit["k"], fit["seed"])]) for fit in fits]
    at_scan = [o for o in outcomes if o["k"] == scan_clusters]
    p_all = [p for o in outcomes for p in o["background_only_p_values"]]
    p_by_k = {str(k): [p for o in outcomes if o["k"] == k
                       for p in o["background_only_p_values"]] for k in ks}
    models = calibration["models"]
    default = models[background_model]["global_p"]
    injection, injection_by_seed = _injection(injections)
    lowest_is_best = bool(at_scan) and all(o["lowest_global_p_cluster_is_max_sb"]
                                           for o in at_scan)
    first = main[0]
    return {
        "inclusive_sb": first["inclusive_sb"],
        "inclusive_significance": first["inclusive_significance"],
        "eval_events": first["events"], "eval_signal": first["signal"],
        "train_events": train_events,
        "max_sb_by_k": {k: value["mean"] for k, value in over_seeds.items()},
        "max_sb_over_seeds": over_seeds,
        "sb_of_test_best_by_k": test_chosen,
        "scan_clusters": scan_clusters,
        "significance_vs_train_events": scan,
        "background_model": background_model,
        "fit_range": {key: fit_range.get(key) for key in ("low", "high", "chosen_from_data")},
        "signal_cluster_global_p": {str(o["seed"]): o["signal_cluster_global_p"]
                                    for o in at_scan},
        "signal_cluster_local_p": {str(o["seed"]): o["signal_cluster_local_p"]
                                   for o in at_scan},
        "signal_cluster_mass": {str(o["seed"]): o["signal_cluster_mass"] for o in at_scan},
        "global_p_over_clusters": {str(o["seed"]): o["global_p_over_clusters"]
                                   for o in at_scan},
        "lowest_global_p_cluster_is_max_sb": lowest_is_best,
        "lowest_global_p_cluster_is_max_sb_by_seed": {
            str(o["seed"]): o["lowest_global_p_cluster_is_max_sb"] for o in at_scan},
        "lowest_p_cluster_is_max_sb": lowest_is_best,
        "bkg_only_frac_p_below_0p05": default["fraction"],
        "bkg_only_frac_p_below_0p05_error": default["error"],
        "bkg_only_frac_p_below_0p05_by_model": calibration["fraction_below_0p05"],
        "calibration": {model: {"global_p": result["global_p"], "local_p": result["local_p"],
                                "failed": result["failed"]}
                        for model, result in models.items()},
        "calibration_truths": calibration["truths"],
        "signal_cluster_global_p_by_model": {
            model: {seed: entry["global_p"] for seed, entry in by_seed.items()}
            for model, by_seed in calibration["power"].items()},
        "bkg_only_observed_frac_p_below_0p05": _below(p_all),
        "bkg_only_observed_frac_p_below_0p05_by_k": {k: _below(p) for k, p in p_by_k.items()},
        "bkg_only_valid_clusters": len(p_all),
        "bkg_only_failed_clusters": sum(o["background_only_failed"] for o in outcomes),
        "injection": injection,
        "injection_by_seed": injection_by_seed,
        "clusterings": runs,
        "fits": outcomes,
        "paper": PAPER,
    }
