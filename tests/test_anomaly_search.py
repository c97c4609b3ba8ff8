"""The background estimate of every cluster: the nearest cluster's dijet fit, the mass
chosen on the test sample, the p-value on the evaluation sample, failures kept."""

import json

import numpy as np
import pytest

from hepclust.anomaly.fit import background_counts, fit_background
from hepclust.anomaly.search import (
    SearchSettings,
    cluster_histograms,
    largest_excess,
    nearest_populated_cluster,
    search,
    search_both,
)

SETTINGS = SearchSettings.from_config(2000, 6000, 40, signal_width=150)
SHAPE = (10.0, 5.0, 0.0)
# Clusters 0 and 1 are each other's nearest, as are 3 and 4; the signal cluster 2 leans on
# 3, and nothing on 2 (a neighbour with the signal in it would be no background model);
# cluster 5, far off, is empty.
CENTROIDS = np.array([[0.0], [1.0], [10.0], [11.0], [11.8], [20.0]])


def dijet_masses(rng, events):
    """m_jj drawn from the dijet function with `SHAPE` between 2 and 6 TeV."""
    fine = np.linspace(2000, 6000, 4001)
    weights = background_counts(fine, 1.0, *SHAPE)
    bins = rng.choice(len(weights), size=events, p=weights / weights.sum())
    return fine[bins] + rng.uniform(0, 1, events)


def sample(rng, background_per_cluster, signal_events, signal_cluster=2):
    """(mjj, cluster, label): background in every cluster but the empty last one, and a
    3.5 TeV Gaussian signal in `signal_cluster`."""
    mjj, clusters, labels = [], [], []
    for cluster in range(len(CENTROIDS) - 1):
        mjj.append(dijet_masses(rng, background_per_cluster))
        clusters.append(np.full(background_per_cluster, cluster))
        labels.append(np.zeros(background_per_cluster, int))
    mjj.append(rng.normal(3500, 150, signal_events))
    clusters.append(np.full(signal_events, signal_cluster))
    labels.append(np.ones(signal_events, int))
    return np.concatenate(mjj), np.concatenate(clusters), np.concatenate(labels)


def test_histograms_by_cluster():
    edges = np.array([1.0, 2.0, 3.0])
    counts = cluster_histograms(np.array([1.5, 2.5, 2.6, 9.0, 1.1]), np.array([0, 0, 1, 1, 2]),
                                3, edges)
    assert counts.tolist() == [[1, 1], [0, 1], [1, 0]]


def test_largest_excess_finds_a_bump():
    rng = np.random.default_rng(1)
    counts, _ = np.histogram(np.concatenate([dijet_masses(rng, 20000),
                                             rng.normal(4050, 60, 400)]), SETTINGS.edges)
    shape = fit_background(np.histogram(dijet_masses(rng, 20000), SETTINGS.edges)[0],
                           SETTINGS.edges).shape
    assert largest_excess(counts, SETTINGS.edges, shape) == pytest.approx(4050, abs=100)


def test_search_ranks_the_signal_cluster_first_and_keeps_failures():
    rng = np.random.default_rng(2)
    eval_sample = sample(rng, 4000, 300)
    test_sample = sample(rng, 2000, 150)
    result = search(*eval_sample[:2], *test_sample[:2], CENTROIDS, SETTINGS)
    rows = result["clusters"]
    assert [row["neighbour"] for row in rows] == [1, 0, 3, 4, 3, 4]
    assert result["lowest_p_cluster"] == 2
    assert result["ranking"][0] == 2
    assert rows[2]["p_value"] < 1e-6
    assert rows[2]["mass"] == pytest.approx(3500, abs=100)
    assert rows[2]["test"]["signal"]["parameters"]["signal_yield"] == pytest.approx(300, rel=0.3)
    assert all(rows[c]["p_value"] > 1e-3 for c in (0, 1, 3, 4))
    # The empty cluster 5 is reported, with why, and left out of the ranking only.
    assert rows[5]["events"] == 0
    assert rows[5]["valid"] is False
    assert "no events" in json.dumps(rows[5])
    assert 5 not in result["ranking"]
    assert (result["valid_clusters"], result["failed_clusters"]) == (5, 1)
    json.dumps(result, allow_nan=False)


def test_the_nearest_cluster_with_events_is_the_background_model():
    populated = np.array([True, True, False, True])
    centroids = np.array([[0.0], [5.0], [1.0], [2.5]])
    assert nearest_populated_cluster(centroids, populated).tolist() == [3, 3, 0, 0]
    # With fewer than two clusters with events, simply the nearest other centroid.
    assert nearest_populated_cluster(centroids, [True, False, False, False]).tolist() == \
        [2, 3, 0, 2]


def test_a_failed_neighbour_fit_is_reported_not_dropped():
    rng = np.random.default_rng(3)
    mjj, clusters, _ = sample(rng, 500, 0)
    # Cluster 4's nearest, cluster 5, holds two events: too few for four parameters.
    mjj, clusters = np.append(mjj, [3050.0, 3060.0]), np.append(clusters, [5, 5])
    centroids = np.array([[0.0], [1.0], [10.0], [11.0], [15.0], [15.5]])
    result = search(mjj, clusters, mjj, clusters, centroids, SETTINGS)
    row = result["clusters"][4]
    assert row["neighbour"] == 5
    assert row["valid"] is False
    assert row["p_value"] is None
    assert "background fit of cluster 5 failed" in row["message"]
    assert row["background_shape"]["valid"] is False
    assert 4 not in result["ranking"]
    assert result["failed_background_fits"] == 1
    # The 500-event clusters' fits all serve, some with the three-parameter fallback.
    fitted = [result["clusters"][c]["background_shape"] for c in (1, 0, 3)]
    assert all(fit["valid"] for fit in fitted)
    for fit in fitted:
        if fit["parameters_fitted"] == 3:
            assert fit["parameters"]["p3"] == 0
            assert fit["four_parameter_fit"]["valid"] is False


def test_search_both_removes_the_signal_for_the_background_only_check():
    rng = np.random.default_rng(4)
    eval_mjj, eval_cluster, eval_label = sample(rng, 3000, 300)
    test_mjj, test_cluster, test_label = sample(rng, 1500, 150)
    stored = {"centroids": CENTROIDS,
              "eval_mjj": eval_mjj, "eval_cluster": eval_cluster, "eval_label": eval_label,
              "test_mjj": test_mjj, "test_cluster": test_cluster, "test_label": test_label}
    result = search_both(stored, SETTINGS)
    with_signal, without = result["signal"]["clusters"], result["background_only"]["clusters"]
    assert with_signal[2]["events"] == without[2]["events"] + (
        (eval_label == 1) & (eval_mjj >= 2000) & (eval_mjj < 6000)).sum()
    assert with_signal[2]["p_value"] < 1e-6
    assert without[2]["p_value"] > 1e-3


def test_search_settings_refuse_nonsense():
    with pytest.raises(ValueError, match="low 6000"):
        SearchSettings.from_config(6000, 2000, 10, 100)
