"""The data-driven background estimate of every cluster (PRD 103, 092007, Sec. VI.A).

For a cluster c with nearest other cluster n (centroid distance; among clusters with
events in the histogram, as a centroid that lost all its events models nothing):

1. fit the dijet function to n's m_jj histogram (`fit_background`, evaluation sample);
2. freeze its shape (p1, p2, p3) and test c: a normalisation-only fit against one with a
   Gaussian signal of non-negative yield, whose likelihood ratio gives the local p-value
   of the background-only hypothesis (`local_p_value`).

Where the Gaussian sits: the mass is chosen on the independent test sample (the same
steps with the mass free there, started at the largest local excess, on the same frozen
shape), then fixed for the test on the evaluation sample. A mass fitted on the evaluated
histogram itself would make the p-value the smallest of several looks (the look-elsewhere
effect), far from uniform without signal; choosing it on independent events keeps the
evaluation p-value a one-look p-value, as the paper's independent training, test and
evaluation samples intend.

Every fit is kept, valid or not: a cluster whose fits fail carries ``valid`` False and the
fits' messages, and only valid clusters are ranked.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hepclust.anomaly.clusters import nearest_other_cluster
from hepclust.anomaly.dijets import assigned_split
from hepclust.anomaly.fit import (
    SignalTest,
    expected_counts,
    fit_background,
    fit_normalisation,
    frozen,
    local_p_value,
)


@dataclass(frozen=True)
class SearchSettings:
    """The m_jj histogram (`edges`, GeV), the signal's Gaussian width (GeV), and the shape
    parameters of the neighbour's fit that the cluster's fits refit (`refit`; the paper:
    none, the whole shape frozen)."""

    edges: np.ndarray
    signal_width: float
    refit: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, low: float, high: float, bins: int, signal_width: float,
                    refit: Sequence[str] = ()) -> "SearchSettings":
        if not 0 < low < high or bins < 1 or signal_width <= 0:
            raise ValueError(f"need 0 < low < high, bins >= 1 and a positive width, got "
                             f"low {low}, high {high}, bins {bins}, width {signal_width}")
        frozen(refit)
        return cls(np.linspace(low, high, bins + 1), float(signal_width), tuple(refit))


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


def largest_excess(counts: np.ndarray, edges: np.ndarray, shape: tuple,
                   refit: Sequence[str] = ()) -> float:
    """The centre of the bin where the counts exceed the frozen-shape background fit most,
    in units of its Poisson error: where a signal fit starts. The histogram's middle when
    the fit fails."""
    background = fit_normalisation(counts, edges, shape, refit)
    centres = (edges[1:] + edges[:-1]) / 2
    if not math.isfinite(background.parameters["p0"]):
        return float(centres[len(centres) // 2])
    expected = expected_counts(edges, background.parameters)
    pull = (counts - expected) / np.sqrt(np.maximum(expected, 1.0))
    return float(centres[int(np.argmax(pull))])


def _usable(fit) -> bool:
    return fit.valid and all(math.isfinite(v) for v in fit.shape)


def shape_fits(counts: np.ndarray, edges: np.ndarray) -> list[dict]:
    """The dijet fit of every cluster's histogram as a dict, with ``shape`` the frozen
    (p1, p2, p3) it lends to the clusters it is nearest to, or None when it cannot serve
    (not converged, or non-finite parameters). Where the four-parameter fit fails (a few
    hundred events often leave it degenerate), the three-parameter function (p3 = 0) is
    fitted instead; ``parameters_fitted`` says which, and the failed four-parameter fit is
    kept under ``four_parameter_fit``."""
    fits = []
    for cluster_counts in counts:
        fit = fit_background(cluster_counts, edges)
        entry = {**fit.to_dict(), "parameters_fitted": 4}
        if not _usable(fit) and cluster_counts.sum() > 0:
            fallback = fit_background(cluster_counts, edges, p3=0.0)
            entry = {**fallback.to_dict(), "parameters_fitted": 3,
                     "four_parameter_fit": fit.to_dict()}
            fit = fallback
        fits.append({**entry, "shape": list(fit.shape) if _usable(fit) else None})
    return fits


def _test(counts: np.ndarray, shape: list, mass: float, settings: SearchSettings,
          free_mass: bool) -> SignalTest | str:
    """The signal test, or why it could not run (a shape with no finite yield here)."""
    try:
        return local_p_value(counts, settings.edges, shape, mass, settings.signal_width,
                             free_mass=free_mass, refit=settings.refit)
    except ValueError as err:
        return str(err)


def choose_masses(counts: np.ndarray, neighbours: np.ndarray, fits: list[dict],
                  settings: SearchSettings) -> list[dict]:
    """For each cluster, the signal mass preferred by a free-mass fit of its test-sample
    histogram (`counts`) on the frozen shape of its neighbour's fit; None where a fit
    failed."""
    choices = []
    for cluster, neighbour in enumerate(neighbours):
        shape = fits[neighbour]["shape"]
        choice = {"cluster": cluster, "events": int(counts[cluster].sum()), "mass": None,
                  "valid": False, "message": f"no background shape from cluster {neighbour}"}
        if shape is not None:
            start = largest_excess(counts[cluster], settings.edges, shape, settings.refit)
            test = _test(counts[cluster], shape, start, settings, free_mass=True)
            if isinstance(test, str):
                choice["message"] = test
            else:
                mass = test.signal.parameters["mass"]
                choice.update(start_mass=start, test=test.to_dict(), valid=test.valid,
                              mass=mass if math.isfinite(mass) else None,
                              message=test.signal.message)
        choices.append(choice)
    return choices


def p_values(counts: np.ndarray, neighbours: np.ndarray, fits: list[dict],
             masses: list[float | None], settings: SearchSettings) -> list[dict]:
    """The background-only test of each cluster's evaluation histogram (`counts`) at its
    given mass on the frozen shape of its neighbour's fit; a cluster without a mass is
    tested at the histogram's middle, and flagged."""
    edges = settings.edges
    middle = float((edges[0] + edges[-1]) / 2)
    rows = []
    for cluster, neighbour in enumerate(neighbours):
        shape_fit, mass = fits[neighbour], masses[cluster]
        row = {"cluster": cluster, "neighbour": int(neighbour),
               "events": int(counts[cluster].sum()),
               "counts": counts[cluster].astype(int).tolist(),
               "neighbour_counts": counts[neighbour].astype(int).tolist(),
               "background_shape": {k: v for k, v in shape_fit.items() if k != "shape"},
               "mass": mass if mass is not None else middle,
               "mass_from_test_sample": mass is not None, "p_value": None,
               "significance": None, "valid": False}
        if shape_fit["shape"] is None:
            row["message"] = f"the background fit of cluster {neighbour} failed: " \
                             f"{shape_fit['message']}"
        else:
            test = _test(counts[cluster], shape_fit["shape"], row["mass"], settings,
                         free_mass=False)
            if isinstance(test, str):
                row["message"] = test
            else:
                summary = test.to_dict()
                row.update(test=summary, p_value=summary["p_value"],
                           significance=summary["significance"], valid=test.valid,
                           message="converged" if test.valid else
                           f"background: {test.background.message}; "
                           f"signal: {test.signal.message}")
        rows.append(row)
    return rows


def search(eval_mjj: np.ndarray, eval_clusters: np.ndarray, test_mjj: np.ndarray,
           test_clusters: np.ndarray, centroids: np.ndarray,
           settings: SearchSettings) -> dict:
    """The whole background estimate for one clustering: each cluster's dijet fit on the
    evaluation sample (the background model of the clusters it is nearest to), masses
    chosen on the test sample, p-values on the evaluation sample, and the valid clusters
    ranked by p-value. The test sample's histograms use the evaluation fits' shapes: the
    mass choice stays independent of the evaluated histogram, and the larger sample gives
    the steadier fits."""
    k = len(centroids)
    edges = settings.edges
    eval_counts = cluster_histograms(eval_mjj, eval_clusters, k, edges)
    neighbours = nearest_populated_cluster(centroids, eval_counts.sum(axis=1) > 0)
    fits = shape_fits(eval_counts, edges)
    choices = choose_masses(cluster_histograms(test_mjj, test_clusters, k, edges), neighbours,
                            fits, settings)
    rows = p_values(eval_counts, neighbours, fits, [choice["mass"] for choice in choices],
                    settings)
    ranked = sorted((row for row in rows if row["valid"] and row["p_value"] is not None),
                    key=lambda row: row["p_value"])
    return {"edges": edges.tolist(), "signal_width": settings.signal_width,
            "clusters": rows, "mass_choice": choices,
            "ranking": [row["cluster"] for row in ranked],
            "lowest_p_cluster": ranked[0]["cluster"] if ranked else None,
            "valid_clusters": len(ranked), "failed_clusters": k - len(ranked),
            "failed_background_fits": sum(fit["shape"] is None for fit in fits)}


def search_both(clusters_file: dict[str, np.ndarray], settings: SearchSettings) -> dict:
    """`search` on the evaluation stage's clusters, with every event ("signal") and with
    the signal events removed ("background_only": the check that p-values are uniform
    where there is nothing to find)."""
    centroids = clusters_file["centroids"]
    samples = {split: assigned_split(clusters_file, split) for split in ("eval", "test")}
    result = {}
    for name, keep_signal in (("signal", True), ("background_only", False)):
        chosen = {split: arrays["label"] == 0 if not keep_signal
                  else np.ones(len(arrays["label"]), bool) for split, arrays in samples.items()}
        result[name] = search(*(samples[split][key][chosen[split]]
                                for split in ("eval", "test") for key in ("mjj", "cluster")),
                              centroids, settings)
    return result
