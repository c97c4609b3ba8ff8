import json

import numpy as np
import pytest

from hepclust.anomaly.clusters import (
    best_cluster,
    nearest_other_cluster,
    signal_to_background,
    significance,
)

# Cluster 0: 1 signal, 4 background; cluster 1: 3 signal, 3 background; cluster 2: 1 signal,
# no background; cluster 3: empty.
LABELS = np.array([1, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 1])
CLUSTERS = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2])


def test_signal_to_background_by_hand():
    rows = signal_to_background(LABELS, CLUSTERS, k=4)
    assert [(row["signal"], row["background"]) for row in rows] == [(1, 4), (3, 3), (1, 0),
                                                                    (0, 0)]
    assert [row["ratio"] for row in rows] == [0.25, 1.0, None, None]
    assert rows[1]["significance"] == pytest.approx(3 / np.sqrt(3))
    assert rows[2]["significance"] is None
    assert [row["cluster"] for row in rows] == [0, 1, 2, 3]
    json.dumps(rows, allow_nan=False)


def test_best_cluster():
    rows = signal_to_background(LABELS, CLUSTERS, k=4)
    # A background-free cluster with signal outranks any finite S/B ...
    assert best_cluster(rows) == 2
    # ... unless it is too small to count.
    assert best_cluster(rows, min_events=2) == 1
    with pytest.raises(ValueError, match="no cluster"):
        best_cluster(rows, min_events=100)


def test_cluster_permutation_permutes_the_rows():
    permutation = np.array([2, 0, 3, 1])
    rows = signal_to_background(LABELS, CLUSTERS, k=4)
    moved = signal_to_background(LABELS, permutation[CLUSTERS], k=4)
    for old, row in enumerate(rows):
        assert {**moved[permutation[old]], "cluster": old} == row
    assert best_cluster(moved, min_events=2) == permutation[best_cluster(rows, min_events=2)]


def test_significance():
    assert significance(10, 25) == pytest.approx(2.0)
    assert significance([3.0, 4.0, 0.0], [9.0, 0.0, 0.0]).tolist() == [1.0, np.inf, 0.0]


def test_nearest_other_cluster_on_hand_placed_centroids():
    # A chain: 0 -- 1 is 1 apart, 1 -- 2 is 0.5 apart, 3 far away, nearest to 2.
    centroids = np.array([[0.0, 0.0], [1.0, 0.0], [1.5, 0.0], [1.5, 5.0]])
    assert nearest_other_cluster(centroids).tolist() == [1, 2, 1, 2]
    order = np.array([3, 1, 0, 2])
    inverse = np.argsort(order)
    assert (nearest_other_cluster(centroids[order]) ==
            inverse[nearest_other_cluster(centroids)[order]]).all()


@pytest.mark.parametrize(("labels", "clusters", "message"), [
    ([0, 2], [0, 1], "labels must be"),
    ([0, 1], [0, 4], r"\[0, 4\)"),
    ([0, 1, 1], [0, 1], "one label per"),
])
def test_bad_input_raises(labels, clusters, message):
    with pytest.raises(ValueError, match=message):
        signal_to_background(labels, clusters, k=4)


def test_nearest_needs_two_centroids():
    with pytest.raises(ValueError, match="two centroids"):
        nearest_other_cluster(np.zeros((1, 3)))
