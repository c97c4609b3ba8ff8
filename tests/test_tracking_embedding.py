"""Metric learning of the hit embedding and edge refinement, on a toy event of helices."""

import numpy as np
import pytest
import torch
from torch import nn

from hepclust.tracking.embedding import (
    EmbeddingSettings,
    HitEmbedding,
    embed,
    embedding_graph,
    hinge_loss,
    make_mlp,
    sample_pairs,
    train_embedding,
)
from hepclust.tracking.graph import edge_metrics, neighbour_graph
from hepclust.tracking.hit_features import (
    HIT_FEATURES,
    TrackingEvent,
    count_true_pairs,
    hit_features,
)
from hepclust.tracking.refinement import (
    EdgeClassifier,
    RefinementSettings,
    balanced_weights,
    edge_probabilities,
    refine,
    train_refinement,
)
from hepclust.ucluster.training import Schedule

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
LAYER_RADII = np.array([32.0, 72.0, 116.0, 172.0, 260.0, 360.0, 500.0, 660.0, 820.0, 1020.0])
TINY = EmbeddingSettings(hidden=(32, 32), epochs=12, batch_size=256,
                         schedule=Schedule(3e-3, 100, 1e-5), hard_negative_k=6,
                         hard_negative_start=2)


def toy_event(particles: int = 40, noise: int = 40, seed: int = 0) -> TrackingEvent:
    """Helices from near the origin (pT 1-10 GeV in 2 T) with a hit on each of 10 barrel
    layers, and noise hits on random layers."""
    rng = np.random.default_rng(seed)
    radius = 1000.0 * rng.uniform(1, 10, particles) / 0.6  # mm
    phi0 = rng.uniform(-np.pi, np.pi, particles)
    charge = rng.choice([-1, 1], particles)
    cot_theta = rng.uniform(-1.5, 1.5, particles)
    z_start = rng.normal(scale=50.0, size=particles)
    s = 2 * radius[:, None] * np.arcsin(LAYER_RADII / (2 * radius[:, None]))
    turn = charge[:, None] * s / radius[:, None]
    x = charge[:, None] * radius[:, None] * (np.sin(phi0[:, None] + turn) - np.sin(phi0[:, None]))
    y = -charge[:, None] * radius[:, None] * (np.cos(phi0[:, None] + turn)
                                              - np.cos(phi0[:, None]))
    z = z_start[:, None] + cot_theta[:, None] * s
    layer = np.broadcast_to(np.arange(10), x.shape)
    noise_layer = rng.integers(0, 10, noise)
    noise_phi = rng.uniform(-np.pi, np.pi, noise)
    x = np.concatenate([x.ravel(), LAYER_RADII[noise_layer] * np.cos(noise_phi)])
    y = np.concatenate([y.ravel(), LAYER_RADII[noise_layer] * np.sin(noise_phi)])
    z = np.concatenate([z.ravel(), rng.uniform(-1000, 1000, noise)])
    layer = np.concatenate([layer.ravel(), noise_layer])
    particle_id = np.concatenate([np.repeat(np.arange(1, particles + 1), 10),
                                  np.zeros(noise, dtype=np.int64)])
    positions = np.stack([x, y, z], axis=1).astype(np.float32)
    return TrackingEvent(features=hit_features(x, y, z, np.full(len(x), 8), 2 * layer + 2),
                         positions=torch.from_numpy(positions),
                         particle_id=torch.from_numpy(particle_id))


@pytest.fixture(scope="module")
def event():
    return toy_event()


@pytest.fixture(scope="module")
def trained(event):
    torch.set_num_threads(1)
    return train_embedding([event, toy_event(seed=1)], TINY, seed=4, progress=False)


def test_hinge_loss_pulls_true_pairs_and_pushes_false_ones_beyond_the_margin():
    first = torch.zeros(4, 2)
    second = torch.tensor([[0.3, 0.4], [0.3, 0.4], [3.0, 4.0], [0.0, 0.0]])
    same = torch.tensor([True, False, False, True])
    # distances 0.5, 0.5, 5, 0: true pairs cost their distance, false ones 1 - distance
    # while closer than the margin.
    assert hinge_loss(first, second, same).item() == pytest.approx((0.5 + 0.5 + 0 + 0) / 4,
                                                                   abs=1e-5)
    assert hinge_loss(first, second, same, margin=6.0).item() == pytest.approx(
        (0.5 + 5.5 + 1.0 + 0) / 4, abs=1e-5)
    moved = second.clone().requires_grad_()
    hinge_loss(first, moved, same).backward()
    assert (moved.grad[0] * second[0]).sum() > 0  # a true pair's gradient pulls it closer
    assert (moved.grad[1] * second[1]).sum() < 0  # a close false pair's pushes it away
    assert torch.isfinite(moved.grad).all()  # even at distance 0


def test_make_mlp_layers():
    mlp = make_mlp(8, [16, 16, 4])
    assert [type(layer) for layer in mlp] == [nn.Linear, nn.ReLU, nn.Linear, nn.ReLU,
                                              nn.Linear]
    assert mlp(torch.zeros(3, 8)).shape == (3, 4)
    assert isinstance(make_mlp(8, [1], output_activation=nn.Sigmoid)[-1], nn.Sigmoid)


def test_sampled_pairs_are_balanced_and_labelled(event):
    rng = np.random.default_rng(0)
    pairs, same, hard = sample_pairs(event.particle_id, None, EmbeddingSettings(), rng)
    assert hard == 0
    assert int(same.sum()) == count_true_pairs(event.particle_id) == 40 * 45
    assert len(same) == 2 * 40 * 45
    pid = event.particle_id
    assert torch.equal(same, (pid[pairs[0]] == pid[pairs[1]]) & (pid[pairs[0]] != 0))
    assert (pairs[0] != pairs[1]).all()

    settings = EmbeddingSettings(max_true_pairs=200, hard_negatives=0.5, hard_negative_k=4)
    pairs, same, hard = sample_pairs(event.particle_id, event.features[:, :3], settings, rng)
    assert int(same.sum()) == 200
    assert 0 < hard <= 100
    assert len(same) == 200 + 200 + hard
    assert not same[-hard:].any()


def test_training_reduces_the_loss_and_mines_hard_negatives(event, trained):
    model, history = trained
    assert [entry["epoch"] for entry in history] == list(range(TINY.epochs))
    assert history[1]["loss"] < history[0]["loss"]
    assert history[0]["hard_negatives"] == 0 < history[-1]["hard_negatives"]
    assert set(history[0]) >= {"loss", "lr", "pairs", "true_pairs", "seconds"}
    # On fixed balanced pairs the trained model does far better than its initial state.
    pairs, same, _ = sample_pairs(event.particle_id, None, TINY, np.random.default_rng(5))
    torch.manual_seed(4)
    initial = HitEmbedding(len(HIT_FEATURES), TINY.hidden, TINY.embedding_dim)
    with torch.no_grad():
        losses = [hinge_loss(m(event.features[pairs[0]]), m(event.features[pairs[1]]),
                             same).item() for m in (initial, model.eval())]
    assert losses[1] < 0.5 * losses[0]


def test_training_is_deterministic(event):
    settings = EmbeddingSettings(hidden=(16,), epochs=2, batch_size=512, hard_negative_k=4,
                                 hard_negative_start=1)
    runs = [train_embedding([event], settings, seed=9, progress=False) for _ in range(2)]
    assert [h["loss"] for h in runs[0][1]] == [h["loss"] for h in runs[1][1]]
    for a, b in zip(runs[0][0].parameters(), runs[1][0].parameters(), strict=True):
        assert torch.equal(a, b)


def test_the_learned_graph_beats_a_graph_in_the_input_space(event, trained):
    model, _ = trained
    assert embed(model, event.features, "cpu").shape == (len(event), TINY.embedding_dim)
    learned = edge_metrics(embedding_graph(model, event, "cpu", k=10), event.particle_id)
    raw = edge_metrics(neighbour_graph(event.features[:, :3], k=10), event.particle_id)
    assert learned["recall"] > raw["recall"]


def test_balanced_weights():
    weights = balanced_weights(torch.tensor([True, False, False, False]))
    assert weights.tolist() == pytest.approx([2.0, 2 / 3, 2 / 3, 2 / 3])
    assert balanced_weights(torch.tensor([False, False])).tolist() == [1.0, 1.0]


def test_refinement_learns_and_filters_edges(event, trained):
    model, _ = trained
    events = [event, toy_event(seed=1)]
    candidates = [embedding_graph(model, e, "cpu", k=10) for e in events]
    settings = RefinementSettings(hidden=(64, 64), epochs=8, batch_size=512,
                                  schedule=Schedule(3e-3, 100, 1e-5))
    classifier, history = train_refinement(events, candidates, settings, seed=1, progress=False)
    assert isinstance(classifier, EdgeClassifier)
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[0]["edges"] == sum(c.shape[1] for c in candidates)

    probabilities = edge_probabilities(classifier, event, candidates[0], "cpu")
    assert probabilities.shape == (candidates[0].shape[1],)
    assert ((probabilities >= 0) & (probabilities <= 1)).all()
    flipped = edge_probabilities(classifier, event, candidates[0].flip(0), "cpu")
    torch.testing.assert_close(flipped, probabilities)
    kept = refine(candidates[0], probabilities, 0.5)
    before = edge_metrics(candidates[0], event.particle_id)
    after = edge_metrics(kept, event.particle_id)
    assert after["purity"] > before["purity"]
    assert refine(candidates[0], probabilities, 1.0).shape == (2, 0)


@CUDA
def test_training_and_graphs_on_the_gpu(event):
    settings = EmbeddingSettings(hidden=(16,), epochs=2, batch_size=512, hard_negative_k=4,
                                 hard_negative_start=1)
    model, _ = train_embedding([event], settings, seed=0, device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cuda"
    edges = embedding_graph(model, event, "cuda", k=5)
    assert edges.device.type == "cuda"
    candidates = [edges]
    classifier, _ = train_refinement([event], candidates, RefinementSettings(hidden=(16,),
                                     epochs=1), device="cuda", progress=False)
    assert edge_probabilities(classifier, event, edges, "cuda").device.type == "cuda"
