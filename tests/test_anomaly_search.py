"""The search over every cluster of a clustering: neighbours, the scan with each cluster's
trials factor, the ranking by global p-value, the Sidak correction and signal injection."""

import json

import numpy as np
import pytest

from hepclust.anomaly.fit import dijet_function
from hepclust.anomaly.models import ScanSettings, sidak
from hepclust.anomaly.search import (
    cluster_histograms,
    inject,
    nearest_populated_cluster,
    search,
    search_both,
)

SETTINGS = ScanSettings.build(np.arange(2400.0, 6001.0, 200.0), 2800.0, 6000.0, width=150.0,
                              mass_step=200.0, trials_toys=10)
# Clusters 0 and 1 are each other's nearest, as are 3 and 4; the signal cluster 2 leans on
# 3; cluster 5, far off, holds three events (too few to test).
CENTROIDS = np.array([[0.0], [1.0], [10.0], [11.0], [11.8], [20.0]])


def dijet_masses(rng, events, p1=10.0):
    fine = np.linspace(2400.0, 6000.0, 3601)
    weights = dijet_function(fine, 1.0, p1, 5.0, 0.1)
    return rng.choice(fine, size=events, p=weights / weights.sum()) + rng.uniform(0, 1, events)


def sample(rng, background_per_cluster, signal_events):
    """(mjj, cluster, label): background in clusters 0-4 (slopes differing a little), three
    events in cluster 5, and a 3.6 TeV Gaussian signal in cluster 2."""
    mjj, clusters, labels = [], [], []
    for cluster in range(5):
        mjj.append(dijet_masses(rng, background_per_cluster, 9.0 + cluster / 2))
        clusters.append(np.full(background_per_cluster, cluster))
    mjj.append(np.array([3050.0, 3060.0, 4000.0]))
    clusters.append(np.full(3, 5))
    labels = [np.zeros(5 * background_per_cluster + 3, int)]
    mjj.append(rng.normal(3600.0, 150.0, signal_events))
    clusters.append(np.full(signal_events, 2))
    labels.append(np.ones(signal_events, int))
    return np.concatenate(mjj), np.concatenate(clusters), np.concatenate(labels)


def test_histograms_by_cluster():
    counts = cluster_histograms(np.array([2500.0, 2500.0, 3000.0, 7000.0]),
                                np.array([0, 1, 1, 1]), 3, np.array([2000.0, 2800.0, 4000.0]))
    assert counts.tolist() == [[1, 0], [1, 1], [0, 0]]


def test_the_nearest_cluster_with_events_is_the_background_model():
    populated = np.array([True, True, True, True, True, False])
    assert nearest_populated_cluster(CENTROIDS, populated).tolist() == [1, 0, 3, 4, 3, 4]


def test_search_ranks_the_signal_cluster_first_by_global_p():
    rng = np.random.default_rng(1)
    mjj, clusters, _ = sample(rng, 3000, 250)
    result = search(mjj, clusters, CENTROIDS, SETTINGS, "own", seed=1)
    assert result["ranking"][0] == 2 == result["lowest_global_p_cluster"]
    rows = result["clusters"]
    assert abs(rows[2]["mass"] - 3600.0) <= 200.0
    assert rows[2]["global_p"] < 1e-3
    # The trials factor: the global p-value is larger than the local one.
    assert all(row["global_p"] >= row["local_p"] for row in rows if row["valid"])
    assert rows[2]["trials"]["upcrossings"] > 0
    assert result["global_p_over_clusters"] == pytest.approx(sidak(rows[2]["global_p"], 5))
    # The three-event cluster is kept, flagged, and not ranked.
    assert rows[5]["valid"] is False
    assert "fewer than" in rows[5]["message"]
    assert 5 not in result["ranking"]
    assert result["failed_clusters"] == 1
    json.dumps(result, allow_nan=False)


def test_transfer_search_measures_its_constraint_widths():
    rng = np.random.default_rng(2)
    mjj, clusters, _ = sample(rng, 3000, 250)
    result = search(mjj, clusters, CENTROIDS, SETTINGS, "transfer", seed=2)
    assert result["transfer"]["pairs"] == 5
    assert all(width > 0 for width in result["transfer"]["widths"])
    assert result["lowest_global_p_cluster"] == 2


def test_search_both_and_injection():
    rng = np.random.default_rng(3)
    mjj, clusters, labels = sample(rng, 3000, 250)
    stored = {"centroids": CENTROIDS, "eval_mjj": mjj, "eval_cluster": clusters,
              "eval_label": labels}
    result = search_both(stored, SETTINGS, "own", seed=3)
    with_signal, without = result["signal"]["clusters"], result["background_only"]["clusters"]
    assert with_signal[2]["global_p"] < 1e-3
    assert without[2]["global_p"] > 1e-3
    upcrossings = [(row.get("trials") or {}).get("upcrossings") for row in with_signal]
    points = inject(stored, SETTINGS, "own", [0.0, 0.005, 0.02], 3, upcrossings)
    assert [p["signal_events"] for p in points] == [0, 75, 250]  # 0.02 asks for more: all
    assert points[2]["global_significance"] > points[0]["global_significance"]
    assert points[2]["lowest_global_p_cluster"] == 2
