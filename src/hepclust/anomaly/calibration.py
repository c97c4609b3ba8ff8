"""Is a background model's p-value a p-value? Background-only pseudo-data, independent of
the evaluation events, analysed exactly as the data are.

Each "truth" is a pair of smooth spectra, a cluster's and its nearest cluster's (in the
workflow: the own four-parameter dijet fits of the background-only clusters of a real
clustering, so the toys carry the real differences in shape between neighbours). For every
model, the trials factor of a truth is measured once, on toys of the model's fit to the
truth's expected counts (`hepclust.anomaly.models.trials`); then each calibration toy draws
both histograms anew, scans them and turns its q0 into a global p-value. Uniform global
p-values put 5% of toys below 0.05; ``fraction_below`` and its binomial error say how close
a model comes.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hepclust.anomaly.dijets import assigned_split
from hepclust.anomaly.fit import Binning
from hepclust.anomaly.models import (
    MODELS,
    NEEDS_NEIGHBOUR,
    ScanSettings,
    background_fit,
    global_p,
    scan,
    transfer_widths,
    trials,
)
from hepclust.anomaly.search import cluster_histograms, nearest_populated_cluster

THRESHOLD = 0.05


@dataclass(frozen=True)
class Truth:
    """Expected counts per bin of a cluster and of its nearest cluster, and the constraint
    widths of the transfer model measured on the clustering they come from."""

    cluster: np.ndarray
    neighbour: np.ndarray
    transfer_widths: tuple[float, float] = (0.1, 0.1)


def own_truth(counts, neighbour, binning: Binning,
              transfer_widths: tuple[float, float] = (0.1, 0.1)) -> Truth | None:
    """The smooth spectra of a pair: each histogram's own dijet fit (four parameters, or
    three where that fails); None where either fit fails."""
    expected = []
    for histogram in (counts, neighbour):
        background = background_fit("own", histogram, None, binning, errors=False)
        if not background.valid:
            return None
        expected.append(background.expected()[0])
    return Truth(*expected, tuple(transfer_widths))


def fraction_below(p_values: Sequence[float], threshold: float = THRESHOLD) -> dict:
    """The fraction of p-values below `threshold` with its binomial standard error."""
    values = np.array([p for p in p_values if p is not None], np.float64)
    if not len(values):
        return {"fraction": None, "error": None, "toys": 0}
    fraction = float((values < threshold).mean())
    return {"fraction": fraction,
            "error": math.sqrt(max(fraction * (1 - fraction), 1e-12) / len(values)),
            "toys": len(values)}


def calibrate(model: str, truths: Sequence[Truth], settings: ScanSettings, toys: int,
              seed: int) -> dict:
    """`toys` background-only pseudo-experiments spread evenly over `truths`, each analysed
    with `model` (scan, trials factor of its truth, global p-value)."""
    binning = settings.binning
    rng = np.random.default_rng([seed, 16])
    global_ps, local_ps, failed = [], [], 0
    per_truth = np.full(len(truths), toys // len(truths))
    per_truth[: toys % len(truths)] += 1
    mappings = []
    for index, (truth, count) in enumerate(zip(truths, per_truth, strict=True)):
        widths = truth.transfer_widths
        asimov = background_fit(model, truth.cluster, truth.neighbour, binning,
                                widths, errors=False)
        if not asimov.valid:
            failed += int(count)
            mappings.append(None)
            continue
        mapping = trials(asimov, settings, [seed, 17, index], widths)
        mappings.append(mapping["upcrossings"])
        for _ in range(count):
            counts = rng.poisson(truth.cluster).astype(np.float64)
            neighbour = rng.poisson(truth.neighbour).astype(np.float64) \
                if NEEDS_NEIGHBOUR[model] else None
            result = scan(model, counts, neighbour, settings, widths, errors=False)
            if not result["valid"]:
                failed += 1
                continue
            local_ps.append(result["local_p"])
            global_ps.append(global_p(result["q0"], mapping["upcrossings"],
                                      settings.threshold))
    return {"model": model, "toys": int(toys), "failed": failed,
            "global_p": fraction_below(global_ps), "local_p": fraction_below(local_ps),
            "global_p_values": global_ps, "local_p_values": local_ps,
            "upcrossings": mappings}


MAX_TRUTHS = 40  # pairs whose trials factor is measured, per model


def calibrate_clusterings(clusters_files: Sequence[dict], summaries: Sequence[dict],
                          settings: ScanSettings, toys: int, seed: int) -> dict:
    """Every model's calibration and power on the clusterings of `clusters_files` (one per
    training seed, each with its `summaries` S/B table):

    - truths: the own dijet fits of the background-only evaluation events of each testable
      (cluster, nearest cluster) pair, with the transfer widths measured on that clustering
      (with signal, as the search does); at most `MAX_TRUTHS`, drawn at random; `toys`
      pseudo-experiments per model spread over them (`calibrate`);
    - power: the global p-value of the signal-richest cluster under each model, on the
      evaluation events with the signal."""
    binning = settings.binning
    truths, power = [], {model: {} for model in MODELS}
    for clusters_file, summary in zip(clusters_files, summaries, strict=True):
        evaluated = assigned_split(clusters_file, "eval")
        centroids = clusters_file["centroids"]
        k = len(centroids)
        data = cluster_histograms(evaluated["mjj"], evaluated["cluster"], k, binning.edges)
        background = evaluated["label"] == 0
        quiet = cluster_histograms(evaluated["mjj"][background], evaluated["cluster"][background],
                                   k, binning.edges)
        testable = data[:, binning.mask].sum(axis=1) >= settings.min_events
        neighbours = nearest_populated_cluster(centroids, testable)
        pairs = [(c, int(n)) for c, n in enumerate(neighbours) if testable[c] and testable[n]]
        widths = tuple(transfer_widths([(data[c], data[n]) for c, n in pairs], binning,
                                       settings.min_events)["widths"])
        for c, n in pairs:
            if quiet[c, binning.mask].sum() >= settings.min_events:
                truth = own_truth(quiet[c], quiet[n], binning, widths)
                if truth is not None:
                    truths.append(truth)
        best = summary["best_cluster"]
        for model in MODELS:
            power[model][str(summary["seed"])] = _power(model, data, best,
                                                        int(neighbours[best]), settings,
                                                        widths, summary["seed"])
    chosen = np.random.default_rng([seed, 19]).permutation(len(truths))[:MAX_TRUTHS]
    truths = [truths[i] for i in sorted(chosen)]
    if truths:
        by_model = {model: calibrate(model, truths, settings, toys, seed) for model in MODELS}
    else:  # a tiny sample: nothing to calibrate on, said so rather than failed
        by_model = {model: {"model": model, "toys": 0, "failed": 0,
                            "global_p": fraction_below([]), "local_p": fraction_below([]),
                            "global_p_values": [], "local_p_values": [], "upcrossings": [],
                            "message": "no cluster pair has enough background events"}
                    for model in MODELS}
    return {"truths": len(truths), "toys": toys, "models": by_model, "power": power,
            "fraction_below_0p05": {model: result["global_p"]["fraction"]
                                    for model, result in by_model.items()}}


def _power(model: str, data: np.ndarray, cluster: int, neighbour: int,
           settings: ScanSettings, widths, seed: int) -> dict:
    """The global p-value of one cluster of the data under `model`."""
    result = scan(model, data[cluster], data[neighbour], settings, widths)
    if not result["valid"]:
        return {"cluster": cluster, "valid": False, "message": result["message"],
                "global_p": None}
    mapping = trials(result["background"], settings, [seed, 20, cluster], widths)
    return {"cluster": cluster, "valid": True, "mass": result["mass"],
            "local_p": result["local_p"],
            "global_p": global_p(result["q0"], mapping["upcrossings"], settings.threshold)}
