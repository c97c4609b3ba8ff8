"""The bump hunt in every cluster of a clustering (PRD 103, 092007, Sec. VI.A), with
p-values that hold without signal.

For each cluster c of the evaluation sample, with n its nearest other cluster in the
clustering space, the centroids' (among clusters with events in the fitted range):

1. the background-only fit of c's m_jj histogram under the configured model
   (`hepclust.anomaly.models`: the paper's ``frozen`` neighbour shape, c's ``own`` dijet
   fit, or n's shape times a constrained ``transfer`` function);
2. the mass scan: a Gaussian signal at every mass of the grid, the local p-value at the
   best one;
3. the global p-value of c: its trials factor over masses from background-only toys of
   c's fitted model;

then the clusters are ranked by global p-value, and the smallest is corrected for the number
of clusters tested (Sidak): the p-value of the whole search.

The evaluation sample alone is searched; the test sample keeps its role in the S/B table
(the evaluation S/B of the cluster that is best on the test sample).
"""

import math

import numpy as np

from hepclust.anomaly.clusters import nearest_other_cluster
from hepclust.anomaly.dijets import assigned_split
from hepclust.anomaly.models import (
    ScanSettings,
    global_p,
    scan,
    sidak,
    significance,
    transfer_widths,
    trials,
)


def nearest_populated_cluster(centroids: np.ndarray, populated: np.ndarray) -> np.ndarray:
    """For each centroid, the nearest other one whose cluster has events (`populated`): a
    centroid left without events in the histogram is no background model. Where fewer than
    two clusters have events, simply the nearest other centroid."""
    nearest = nearest_other_cluster(centroids)
    populated = np.asarray(populated, bool)
    if populated.sum() < 2:
        return nearest
    centroids = np.asarray(centroids, np.float64)
    distance = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=-1)
    np.fill_diagonal(distance, np.inf)
    distance[:, ~populated] = np.inf
    return distance.argmin(axis=1).astype(np.int64)


def cluster_histograms(mjj: np.ndarray, clusters: np.ndarray, k: int,
                       edges: np.ndarray) -> np.ndarray:
    """(k, bins) m_jj counts of each cluster; events outside the edges are not counted."""
    counts = np.zeros((k, len(edges) - 1))
    for cluster in range(k):
        counts[cluster], _ = np.histogram(mjj[clusters == cluster], bins=edges)
    return counts


def _plain(value):
    return float(value) if value is not None and math.isfinite(value) else None


def search(mjj: np.ndarray, clusters: np.ndarray, centroids: np.ndarray,
           settings: ScanSettings, model: str, seed: int,
           upcrossings: list[float | None] | None = None) -> dict:
    """The whole search on one clustering of the evaluation sample (`mjj`, `clusters`).
    The trials factor of each cluster comes from `settings.trials_toys` toys of its fitted
    model, seeded by `seed` and the cluster, or, where given, from `upcrossings` (each
    cluster's mean upcrossings from an earlier search: the injection study reuses the
    data's)."""
    binning = settings.binning
    k = len(centroids)
    counts = cluster_histograms(mjj, clusters, k, binning.edges)
    in_range = counts[:, binning.mask].sum(axis=1)
    testable = in_range >= settings.min_events
    neighbours = nearest_populated_cluster(centroids, testable)
    widths = None
    transfer = None
    if model == "transfer":
        transfer = transfer_widths([(counts[c], counts[n]) for c, n in enumerate(neighbours)
                                    if testable[c]], binning, settings.min_events)
        widths = tuple(transfer["widths"])
    rows = []
    for cluster, neighbour in enumerate(neighbours):
        row = {"cluster": cluster, "neighbour": int(neighbour), "events": int(in_range[cluster]),
               "counts": counts[cluster].astype(int).tolist(),
               "neighbour_counts": counts[neighbour].astype(int).tolist(),
               "valid": False, "local_p": None, "global_p": None, "mass": None, "q0": None}
        if not testable[cluster] or not testable[neighbour]:
            row["message"] = (f"fewer than {settings.min_events} events in the fitted range "
                              f"({int(in_range[cluster])}, neighbour {int(in_range[neighbour])})")
            rows.append(row)
            continue
        result = scan(model, counts[cluster], counts[neighbour], settings, widths)
        background = result["background"]
        row.update(background=background.result.to_dict(),
                   parameters_fitted=background.parameters_fitted,
                   neighbour_fit=None if background.neighbour_fit is None
                   else background.neighbour_fit.to_dict(),
                   valid=result["valid"], message=result["message"],
                   z=None if result["z"] is None else [_plain(z) for z in result["z"]])
        if result["valid"]:
            if upcrossings is not None:
                mapping = {"upcrossings": upcrossings[cluster], "reused": True}
            else:
                mapping = trials(background, settings, [seed, 16, cluster], widths)
            p = global_p(result["q0"], mapping["upcrossings"], settings.threshold)
            row.update(mass=result["mass"], q0=result["q0"],
                       q0_likelihood_ratio=result["q0_likelihood_ratio"],
                       q0_score=result["q0_score"],
                       local_p=result["local_p"],
                       local_significance=significance(result["local_p"]),
                       signal=result["signal_fit"].to_dict() if result["signal_fit"] else None,
                       trials=mapping, global_p=p, global_significance=significance(p),
                       valid=p is not None)
        rows.append(row)
    ranked = sorted((row for row in rows if row["valid"]),
                    key=lambda row: (row["global_p"], row["local_p"]))
    best = ranked[0] if ranked else None
    p_search = sidak(best["global_p"], len(ranked)) if best else None
    return {"model": model, "edges": binning.edges.tolist(), "fit_low": binning.low,
            "fit_high": binning.high, "signal_width": settings.width,
            "masses": settings.masses.tolist(), "threshold": settings.threshold,
            "transfer": transfer, "clusters": rows,
            "ranking": [row["cluster"] for row in ranked],
            "lowest_global_p_cluster": best["cluster"] if best else None,
            "global_p_over_clusters": p_search,
            "global_significance": significance(p_search),
            "valid_clusters": len(ranked), "failed_clusters": k - len(ranked)}


def search_both(clusters_file: dict[str, np.ndarray], settings: ScanSettings, model: str,
                seed: int) -> dict:
    """`search` on the evaluation events with every event ("signal") and with the signal
    events removed ("background_only")."""
    centroids = clusters_file["centroids"]
    evaluated = assigned_split(clusters_file, "eval")
    background = evaluated["label"] == 0
    return {
        "signal": search(evaluated["mjj"], evaluated["cluster"], centroids, settings, model,
                         seed),
        "background_only": search(evaluated["mjj"][background],
                                  evaluated["cluster"][background], centroids, settings,
                                  model, seed + 1),
    }


def inject(clusters_file: dict[str, np.ndarray], settings: ScanSettings, model: str,
           fractions: list[float], seed: int, upcrossings: list[float | None]) -> list[dict]:
    """Signal injection: every background event of the evaluation sample and a random
    subset of its signal events making `fraction` of the background (all of them where
    fewer exist), searched with each cluster's trials factor from the data's search
    (`upcrossings`). The clustering is the trained one (trained on 1% signal)."""
    centroids = clusters_file["centroids"]
    evaluated = assigned_split(clusters_file, "eval")
    background = np.flatnonzero(evaluated["label"] == 0)
    signal = np.random.default_rng([seed, 18]).permutation(
        np.flatnonzero(evaluated["label"] == 1))
    points = []
    for fraction in fractions:
        chosen = signal[: min(len(signal), round(fraction * len(background)))]
        rows = np.concatenate([background, chosen])
        result = search(evaluated["mjj"][rows], evaluated["cluster"][rows], centroids,
                        settings, model, seed, upcrossings)
        points.append({"fraction": fraction, "signal_events": len(chosen),
                       "actual_fraction": len(chosen) / len(background),
                       "lowest_global_p_cluster": result["lowest_global_p_cluster"],
                       "global_p_over_clusters": result["global_p_over_clusters"],
                       "global_significance": result["global_significance"]})
    return points
