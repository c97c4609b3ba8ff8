"""Hit features, true pairs, graphs in an embedding and their quality, pair features."""

import numpy as np
import pandas as pd
import pytest
import torch

from hepclust.errors import InputError
from hepclust.tracking.graph import edge_metrics, neighbour_graph, undirected
from hepclust.tracking.hit_features import (
    HIT_FEATURES,
    TrackingEvent,
    count_true_pairs,
    hit_features,
    same_particle,
    true_pairs,
)
from hepclust.tracking.pair_features import (
    PAIR_FEATURES,
    _asinh,
    pair_features,
    pair_quantities,
)

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def brute_force_pairs(particle_id):
    n = len(particle_id)
    return {(i, j) for i in range(n) for j in range(i + 1, n)
            if particle_id[i] == particle_id[j] != 0}


def as_pairs(edge_index):
    return set(map(tuple, edge_index.T.tolist()))


def brute_force_graph(points, k=None, r=None):
    """Undirected kNN / radius graph by sorting every row of the distance matrix."""
    distance = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(distance, np.inf)
    edges = set()
    for i, row in enumerate(distance):
        order = np.argsort(row)
        chosen = order if k is None else order[:k]
        chosen = chosen[row[chosen] <= (np.inf if r is None else r)]
        edges |= {(min(i, j), max(i, j)) for j in chosen if np.isfinite(row[j])}
    return edges


# A hand-made event: particles 7 (3 hits), 3 (2 hits), 9 (1 hit), noise (2 hits).
PARTICLE_ID = np.array([7, 0, 3, 7, 9, 3, 0, 7])


def test_true_pairs_of_a_hand_made_event():
    pairs = true_pairs(PARTICLE_ID)
    assert pairs.dtype == torch.int64
    assert pairs.shape == (2, 4)
    assert as_pairs(pairs) == {(0, 3), (0, 7), (3, 7), (2, 5)}
    assert (pairs[0] < pairs[1]).all()
    assert count_true_pairs(PARTICLE_ID) == 4
    assert count_true_pairs(torch.from_numpy(PARTICLE_ID)) == 4


def test_true_pairs_match_brute_force_on_a_random_event():
    rng = np.random.default_rng(3)
    particle_id = rng.integers(0, 40, 500) * 1000  # ~1/40 noise, varied track sizes
    pairs = true_pairs(particle_id)
    expected = brute_force_pairs(particle_id)
    assert as_pairs(pairs) == expected
    assert pairs.shape[1] == len(expected) == count_true_pairs(particle_id)


def test_no_true_pairs_in_noise_or_single_hits():
    assert true_pairs(np.array([0, 0, 5])).shape == (2, 0)
    assert count_true_pairs(np.array([0, 0, 5])) == 0


def test_same_particle_labels_edges():
    edges = torch.tensor([[0, 1, 2, 4], [3, 6, 5, 0]])
    assert same_particle(torch.from_numpy(PARTICLE_ID), edges).tolist() == [True, False,
                                                                           True, False]


def test_hit_features_are_of_order_one():
    x, y, z = np.array([30.0, -800.0]), np.array([0.0, 600.0]), np.array([0.0, -2900.0])
    cells = np.array([[3, 1.2, 0.5, 0.0], [0, 0, 0, 0]])
    features = hit_features(x, y, z, np.array([8, 17]), np.array([2, 14]), cells)
    assert features.dtype == torch.float32
    assert features.shape == (2, len(HIT_FEATURES))
    np.testing.assert_allclose(features[0], [0.03, 0, 0, 0.03, 0, 0, 0.8, 0.2, np.log(4),
                                             np.log(2.2), 0.5, 0.0], atol=1e-7)
    expected = [-0.8, 0.6, -2.9, 1.0, np.arctan2(600, -800) / np.pi, np.arcsinh(-2.9), 1.7, 1.4,
                0, 0, 0, 0]
    np.testing.assert_allclose(features[1], expected, rtol=1e-6)
    without_cells = hit_features(x, y, z, np.array([8, 17]), np.array([2, 14]))
    np.testing.assert_array_equal(without_cells[1], features[1])


def test_tracking_event_from_a_hits_table():
    hits = pd.DataFrame({"x": [30.0, 70.0], "y": [1.0, 2.0], "z": [5.0, 9.0],
                         "volume_id": [8, 8], "layer_id": [2, 4], "particle_id": [4, 4],
                         "event_id": [1, 1]})
    event = TrackingEvent.from_hits(hits)
    assert len(event) == 2
    assert event.positions.dtype == torch.float32
    assert event.particle_id.tolist() == [4, 4]
    assert event.features.shape == (2, len(HIT_FEATURES))
    with_cells = TrackingEvent.from_hits(hits.assign(
        cell_count=[2, 1], cell_value=[1.0, 1.0], cell_theta_u=[0.3, 0.0], cell_theta_v=0.0))
    assert with_cells.features[0, -2].item() == pytest.approx(0.3)
    with pytest.raises(InputError, match="2 events"):
        TrackingEvent.from_hits(hits.assign(event_id=[1, 2]), source="two.parquet")
    with pytest.raises(InputError, match=r"hits\.parquet: missing column.*particle_id"):
        TrackingEvent.from_hits(hits.drop(columns="particle_id"), source="hits.parquet")


@pytest.mark.parametrize(("k", "r"), [(5, None), (None, 0.3), (4, 0.25)])
@pytest.mark.parametrize("backend", ["kdtree", "torch"])
def test_neighbour_graph_equals_brute_force(k, r, backend):
    points = np.random.default_rng(1).normal(size=(300, 3)).astype(np.float32)
    edges = neighbour_graph(torch.from_numpy(points), k=k, r=r, backend=backend, chunk_size=64)
    assert edges.dtype == torch.int64
    assert (edges[0] < edges[1]).all()
    assert as_pairs(edges) == brute_force_graph(points.astype(np.float64), k, r)
    assert len(as_pairs(edges)) == edges.shape[1]


def test_neighbour_graph_with_duplicate_points_and_large_k():
    points = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0]])
    for backend in ("kdtree", "torch"):
        assert as_pairs(neighbour_graph(points, k=10, backend=backend)) == {(0, 1), (0, 2),
                                                                            (1, 2)}
        nearest = as_pairs(neighbour_graph(points, k=1, backend=backend))
        assert len(nearest) == 2
        assert (0, 1) in nearest  # a duplicate point is its twin's neighbour, not its own
    assert neighbour_graph(points[:1], k=3).shape == (2, 0)
    with pytest.raises(ValueError, match="give k, r"):
        neighbour_graph(points)


@CUDA
def test_neighbour_graph_on_the_gpu_equals_the_kdtree():
    points = torch.randn(5000, 4)
    on_cpu = neighbour_graph(points, k=8, r=0.5)
    on_gpu = neighbour_graph(points.cuda(), k=8, r=0.5, chunk_size=1000)
    assert on_gpu.device.type == "cuda"
    assert torch.equal(on_gpu.cpu(), on_cpu)


def test_undirected_keeps_each_pair_once():
    edges = torch.tensor([[0, 3, 2, 1, 2], [3, 0, 2, 4, 1]])
    assert undirected(edges, 5).tolist() == [[0, 1, 1], [3, 2, 4]]


def test_points_clustered_by_particle_give_full_recall():
    rng = np.random.default_rng(2)
    particle_id = np.repeat(np.arange(1, 21), 6)
    centres = rng.uniform(-50, 50, size=(20, 4))
    points = centres[particle_id - 1] + rng.normal(scale=0.01, size=(len(particle_id), 4))
    edges = neighbour_graph(torch.from_numpy(points), r=0.5)
    metrics = edge_metrics(edges, particle_id)
    assert metrics == {"edges": 20 * 15, "true_edges": 20 * 15, "true_pairs": 20 * 15,
                       "purity": 1.0, "recall": 1.0}


def test_edge_metrics_of_a_hand_made_graph():
    edges = torch.tensor([[0, 3, 1, 2], [3, 0, 6, 4]])  # (0, 3) twice, noise pair, false
    metrics = edge_metrics(edges, PARTICLE_ID)
    assert metrics == {"edges": 3, "true_edges": 1, "true_pairs": 4, "purity": 1 / 3,
                       "recall": 1 / 4}
    assert edge_metrics(torch.zeros((2, 0), dtype=torch.int64), PARTICLE_ID)["purity"] is None


def helix_points(radius, phi0, charge, arc_lengths, dz_ds, z_start=0.0):
    """Points (N, 3) of a helix through the origin (at arc length 0) of transverse radius
    `radius`, leaving the origin at azimuth `phi0`, bending with the sign of `charge`."""
    s = np.asarray(arc_lengths, dtype=np.float64)
    turn = charge * s / radius
    x = charge * radius * (np.sin(phi0 + turn) - np.sin(phi0))
    y = -charge * radius * (np.cos(phi0 + turn) - np.cos(phi0))
    return np.stack([x, y, z_start + dz_ds * s], axis=1)


@pytest.mark.parametrize(("radius", "phi0", "charge"), [(1000.0, 0.3, 1), (300.0, 2.9, -1),
                                                        (5000.0, -2.0, 1)])
def test_pair_features_of_a_helix_from_the_origin(radius, phi0, charge):
    points = helix_points(radius, phi0, charge, [30.0, 110.0, 250.0, 400.0], dz_ds=0.7)
    edges = torch.tensor([[0, 1, 3, 0], [1, 2, 2, 3]])
    pair = pair_quantities(torch.from_numpy(points), edges)
    np.testing.assert_allclose(pair["rho"], radius, rtol=1e-9)
    phi = np.arctan2(points[:, 1], points[:, 0])
    inner, outer = np.array([0, 1, 2, 0]), np.array([1, 2, 3, 3])  # ordered by r
    np.testing.assert_allclose(pair["dz"], points[outer, 2] - points[inner, 2], rtol=1e-12)
    np.testing.assert_allclose(pair["dr"], np.hypot(*(points[outer, :2] - points[inner, :2]).T))
    np.testing.assert_allclose(pair["dphi"], np.arccos(np.cos(phi[outer] - phi[inner])),
                               rtol=1e-6)


def test_z0_of_tracks_from_the_origin():
    # z is linear in arc length, not in r: z0 is 0 only for a straight track...
    straight = np.outer([30.0, 400.0], [np.cos(0.4), np.sin(0.4), 0.7])
    curved = helix_points(1000.0, 0.4, 1, [30.0, 400.0], dz_ds=0.7)
    edge = torch.tensor([[0], [1]])
    assert abs(pair_quantities(torch.from_numpy(straight), edge)["z0"].item()) < 1e-9
    # ...and near 0 for a curved one: 0.25 mm at rho = 1 m, r = 100 and 200 mm, dz/ds = 1.
    assert abs(pair_quantities(torch.from_numpy(curved), edge)["z0"].item()) < 1.0
    s = 2000.0 * np.arcsin(np.array([0.05, 0.1]))  # arc lengths at r = 100, 200 mm
    at_100_200 = helix_points(1000.0, 0.4, 1, s, dz_ds=1.0)
    z0 = pair_quantities(torch.from_numpy(at_100_200), edge)["z0"].item()
    assert z0 == pytest.approx(-0.251, abs=1e-3)
    # Moved 50 mm along z, the track's z0 follows.
    moved = straight + np.array([0.0, 0.0, 50.0])
    assert pair_quantities(torch.from_numpy(moved), edge)["z0"].item() == pytest.approx(50.0)


def test_rho_and_z0_of_hand_made_pairs():
    # (100, 0) and (0, 100) lie on the circle of radius 50 sqrt(2) through the origin.
    positions = torch.tensor([[100.0, 0.0, 10.0], [0.0, 100.0, 30.0],
                              [200.0, 0.0, 50.0], [300.0, 0.0, 90.0]], dtype=torch.float64)
    edges = torch.tensor([[0, 0, 3], [1, 2, 2]])
    pair = pair_quantities(positions, edges)
    np.testing.assert_allclose(pair["rho"][0], 50 * np.sqrt(2))
    np.testing.assert_allclose(pair["dphi"][0], np.pi / 2)
    assert torch.isinf(pair["rho"][1:]).all()  # aligned with the origin
    np.testing.assert_allclose(pair["z0"][1:], [-30.0, -30.0])  # z = -30 + 0.4 r
    np.testing.assert_allclose(pair["dz"][1:], [40.0, 40.0])  # oriented inner to outer
    assert torch.isinf(pair["z0"][0])  # both hits at r = 100: no line crosses r = 0


def test_pair_features_are_finite_and_symmetric():
    positions = torch.tensor([[100.0, 0.0, 10.0], [0.0, 100.0, 30.0], [200.0, 0.0, 50.0],
                              [200.0, 0.0, 50.0]])
    edges = torch.tensor([[0, 0, 2, 1], [1, 2, 3, 3]])
    features = pair_features(positions, edges)
    assert features.shape == (4, len(PAIR_FEATURES))
    assert torch.isfinite(features).all()
    assert torch.equal(pair_features(positions, edges.flip(0)), features)
    np.testing.assert_allclose(features[1], [0.1, 0, 0.04, 0, np.arcsinh(-30 / 200)],
                               atol=1e-6)
    assert features[2].tolist() == [0, 0, 0, 0, 0]  # coincident hits


def test_the_fast_asinh_holds_float32_precision():
    magnitudes = torch.logspace(-10, 17, 10_000, dtype=torch.float64)
    values = torch.cat([-magnitudes, torch.zeros(1), magnitudes]).float()
    exact = torch.asinh(values.double())
    error = (_asinh(values).double() - exact).abs() / exact.abs().clamp(min=1)
    assert error.max() < 2e-7
