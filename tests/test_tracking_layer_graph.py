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
from hepclust.tracking.layer_graph import LayerPairGraph, learn_layer_pairs

RADII = np.array([40.0, 80.0, 130.0, 200.0])  # barrel layers 2, 4, 6, 8 of volume 8


def barrel_event(particles: int = 30, seed: int = 0) -> TrackingEvent:
    """Straight tracks from near the origin, one hit per layer, in random order."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-np.pi, np.pi, particles)
    cot_theta = rng.uniform(-1, 1, particles)
    z0 = rng.normal(scale=5.0, size=particles)
    x = np.outer(np.cos(phi), RADII).ravel()
    y = np.outer(np.sin(phi), RADII).ravel()
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
