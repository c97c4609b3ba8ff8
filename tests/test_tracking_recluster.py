import numpy as np

from hepclust.tracking.layer_union import SameLayerRule
from hepclust.tracking.recluster import recluster_small
from straight_tracks import two_straight_tracks


def recluster(labels, edges, probability, max_hits=2, min_probability=0.03) -> list[int]:
    layers, positions = two_straight_tracks()
    return recluster_small(np.array(labels), np.array(edges).T, np.array(probability), layers,
                           SameLayerRule(positions, 15.0), max_hits, min_probability).tolist()


# Track 0 lost its last hit (4), which sits alone; track 1 is whole.
LOST_END = [0, 0, 0, 0, 1, 2, 2, 2, 2, 2]


def test_a_lost_end_hit_rejoins_its_track_through_a_weak_edge():
    assert recluster(LOST_END, [[3, 4]], [0.1]) == [0] * 5 + [1] * 5


def test_edges_below_the_lowest_probability_join_nothing():
    assert recluster(LOST_END, [[3, 4]], [0.02]) == LOST_END


def test_two_tracks_never_merge_through_a_rejoined_hit():
    # An inner piece of one track (hits 0-1, layers 1-2), its hit 2 alone on layer 3, and
    # an outer piece of another (hits 3-5, layers 4-6, 100 mm away): no layer forbids the
    # merge, but once hit 2 has rejoined its piece both ends of the fake are large.
    layers = np.arange(1, 7)
    positions = np.array([[100.0 * layer, 100.0 * (layer > 3), 0.0] for layer in layers])
    edges, probability = np.array([[1, 2], [2, 3]]).T, np.array([0.5, 0.4])
    labels = recluster_small(np.array([0, 0, 1, 2, 2, 2]), edges, probability, layers,
                             SameLayerRule(positions, 15.0), max_hits=1, min_probability=0.03)
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]


def test_a_hit_never_joins_a_track_holding_a_far_hit_of_its_layer():
    # Hit 9 (layer 5, y = 100 mm) alone; track 0 already crosses layer 5 at y = 0.
    labels = [0] * 5 + [1] * 4 + [2]
    assert recluster(labels, [[4, 9], [8, 9]], [0.9, 0.1]) == [0] * 5 + [1] * 5


def test_small_clusters_join_each_other_and_larger_ones_stay_as_they_are():
    labels = [0, 0, 1, 1, 2, 3, 3, 3, 3, 3]  # track 0 in three pieces of 2, 2 and 1 hits
    joined = recluster(labels, [[1, 2], [3, 4]], [0.5, 0.5])
    assert joined == [0] * 5 + [1] * 5
    assert recluster(labels, [[1, 2], [3, 4]], [0.5, 0.5], max_hits=0) == [0, 0, 1, 1, 2] + [3] * 5
