"""The layer-pair graph: layer pairs and windows learned from truth on a toy barrel."""

import numpy as np
import pytest
import torch

from hepclust.errors import InputError
from hepclust.tracking.graph import edge_metrics
from hepclust.tracking.hit_features import (
    TrackingEvent,
    consecutive_pairs,
    detector_layers,
    hit_features,
)
from hepclust.tracking.layer_graph import (
    LayerPairGraph,
    _cheapest_windows,
    _phi_eta_window_pairs,
    learn_layer_pairs,
)

RADII = np.array([40.0, 80.0, 130.0, 200.0])  # barrel layers 2, 4, 6, 8 of volume 8


def barrel_event(particles: int = 30, seed: int = 0, kinked: int = 0) -> TrackingEvent:
    """Straight tracks from near the origin, one hit per layer, in random order; the
    first `kinked` of them turn by 0.5-1 rad after the first layer (as a curling
    particle's pairs would)."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-np.pi, np.pi, particles)
    cot_theta = rng.uniform(-1, 1, particles)
    z0 = rng.normal(scale=5.0, size=particles)
    kink = np.zeros(particles)
    kink[:kinked] = rng.uniform(0.5, 1.0, kinked) * rng.choice([-1, 1], kinked)
    phi = phi[:, None] + kink[:, None] * (np.arange(len(RADII)) >= 1)
    x = (np.cos(phi) * RADII).ravel()
    y = (np.sin(phi) * RADII).ravel()
    z = (z0[:, None] + cot_theta[:, None] * RADII).ravel()
    layer = np.tile(2 * np.arange(1, 5), particles)
    particle_id = np.repeat(np.arange(1, particles + 1), len(RADII))
    order = rng.permutation(len(x))
    x, y, z, layer, particle_id = x[order], y[order], z[order], layer[order], particle_id[order]
    positions = np.stack([x, y, z], axis=1).astype(np.float32)
    return TrackingEvent(features=hit_features(x, y, z, np.full(len(x), 8), layer),
                         positions=torch.from_numpy(positions),
                         particle_id=torch.from_numpy(particle_id))


@pytest.fixture(scope="module")
def learned() -> LayerPairGraph:
    return learn_layer_pairs([barrel_event(seed=s) for s in range(3)], quantile=0.0,
                             margin=0.1)


def test_detector_layers_reads_back_the_ids():
    event = barrel_event(particles=2)
    layers = detector_layers(event.features).numpy()
    assert set(layers) == {802, 804, 806, 808}


def test_only_adjacent_layers_are_paired(learned):
    assert sorted(map(tuple, learned.layers.tolist())) == [(802, 804), (804, 806), (806, 808)]
    assert np.all(learned.low < learned.high)


def test_the_graph_holds_the_consecutive_hits_and_little_else(learned):
    event = barrel_event(seed=7)
    edges = learned.edges(event)
    truth = consecutive_pairs(event.particle_id, event.positions)
    found = {tuple(sorted(p)) for p in edges.T.tolist()}
    wanted = {tuple(sorted(p)) for p in truth.T.tolist()}
    assert len(wanted - found) <= 1  # a track may fall just outside a learned window
    first, second = detector_layers(event.features)[edges]
    assert torch.all((second - first).abs() == 2)  # never skips a layer
    assert edge_metrics(edges, event.particle_id)["purity"] > 0.5  # 30 tracks, 4 layers
    assert torch.all(edges[0] < edges[1])


def test_a_window_wider_than_the_circle_pairs_each_hit_once():
    event = barrel_event(particles=5)
    wide = LayerPairGraph(np.array([[802, 804]]), np.array([[-10.0, -10.0, -1e9]]),
                          np.array([[10.0, 10.0, 1e9]]))
    assert wide.edges(event).shape[1] == 25


def test_saved_and_loaded(learned, tmp_path):
    path = tmp_path / "layer_pairs.pt"
    learned.save(path)
    again = LayerPairGraph.load(path)
    event = barrel_event(seed=3)
    assert torch.equal(again.edges(event), learned.edges(event))
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"bad\.pt"):
        LayerPairGraph.load(tmp_path / "bad.pt")


def _pair_set(edges: torch.Tensor) -> set[tuple[int, int]]:
    return {tuple(sorted(p)) for p in edges.T.tolist()}


def test_windows_narrow_where_a_few_true_pairs_cost_many_candidates():
    training = [barrel_event(particles=200, seed=s, kinked=2) for s in range(3)]
    wide = learn_layer_pairs(training, quantile=0.001, margin=0.1)
    narrow = learn_layer_pairs(training, quantile=0.001, margin=0.1, lost_fraction=0.01)
    event = barrel_event(particles=200, seed=9, kinked=2)
    wide_edges, narrow_edges = wide.edges(event), narrow.edges(event)
    assert wide.high[0, 0] - wide.low[0, 0] > 1  # 802 -> 804: the kinked pairs' dphi
    assert narrow.high[0, 0] - narrow.low[0, 0] < 0.1
    assert narrow_edges.shape[1] < 0.3 * wide_edges.shape[1]
    truth = _pair_set(consecutive_pairs(event.particle_id, event.positions))
    assert len(truth - _pair_set(wide_edges)) <= 1
    assert len(truth - _pair_set(narrow_edges)) <= 0.02 * len(truth)  # 1% in training


def test_the_cheapest_windows_go_first_within_the_allowed_loss():
    candidates = np.array([[100.0, 10.0, 5.0], [50.0, 49.0, 0.0]])
    inside = np.array([[10.0, 9.0, 1.0], [5.0, 5.0, 0.0]])
    # Pair 1's first step loses nothing; pair 0's saves 90 candidates for one true pair;
    # pair 1's next (49 for 5) would go over the allowed loss.
    assert _cheapest_windows(candidates, inside, allowed_loss=1.0).tolist() == [1, 1]
    assert _cheapest_windows(candidates, inside, allowed_loss=0.0).tolist() == [0, 1]
    # Dropping pair 1 would save nothing.
    assert _cheapest_windows(candidates, inside, allowed_loss=100.0).tolist() == [3, 2]


@pytest.mark.parametrize("dphi", [(-0.3, 0.2), (2.9, 3.3), (-3.5, -2.8), (-4.0, 4.0)])
def test_the_binned_search_finds_what_a_scan_of_all_pairs_finds(dphi):
    rng = np.random.default_rng(5)
    hits = {"phi": rng.uniform(-np.pi, np.pi, 400), "eta": rng.uniform(-3, 3, 400)}
    inner, outer = np.arange(150), np.arange(150, 400)
    low, high = np.array([dphi[0], -0.4, 0.0]), np.array([dphi[1], 0.3, 0.0])
    a, b = _phi_eta_window_pairs(hits, inner, outer, low, high)
    assert len(set(zip(a.tolist(), b.tolist(), strict=True))) == len(a)  # each pair once
    found = {(i, o) for i, o in zip(a.tolist(), b.tolist(), strict=True)
             if low[1] <= hits["eta"][o] - hits["eta"][i] <= high[1]}
    i, o = np.meshgrid(inner, outer, indexing="ij")
    i, o = i.ravel(), o.ravel()
    turned = np.remainder(hits["phi"][o] - hits["phi"][i] - dphi[0], 2 * np.pi)
    inside = (turned <= dphi[1] - dphi[0]) & (hits["eta"][o] - hits["eta"][i] >= low[1]) & (
        hits["eta"][o] - hits["eta"][i] <= high[1])
    assert found == set(zip(i[inside].tolist(), o[inside].tolist(), strict=True))
