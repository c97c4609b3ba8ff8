"""The interaction-network edge classifier, its training on phi sectors, and the
consecutive-hit truth of the embedding."""

import numpy as np
import pytest
import torch

from hepclust.tracking.checkpoints import load_module, save_module
from hepclust.tracking.embedding import EmbeddingSettings, sample_pairs
from hepclust.tracking.hit_features import TrackingEvent, consecutive_pairs, hit_features
from hepclust.tracking.refinement import (
    InteractionEdgeClassifier,
    RefinementSettings,
    edge_classifier,
    edge_probabilities,
    end_products,
    mlp_on_edges,
    phi_sectors,
    train_refinement,
)
from hepclust.ucluster.training import Schedule


def four_hits() -> TrackingEvent:
    """Two straight tracks of two hits each, at phi 0 and pi / 2."""
    x = np.array([30.0, 70.0, 0.0, 0.0])
    y = np.array([0.0, 0.0, 30.0, 70.0])
    z = np.array([3.0, 7.0, -3.0, -7.0])
    return TrackingEvent(features=hit_features(x, y, z, np.full(4, 8), np.array([2, 4, 2, 4])),
                         positions=torch.tensor(np.stack([x, y, z], axis=1), dtype=torch.float32),
                         particle_id=torch.tensor([1, 1, 2, 2]))


EDGES = torch.tensor([[0, 2, 0, 1], [1, 3, 3, 2]])  # two true edges, two false ones


def test_the_interaction_network_gives_one_logit_per_edge_and_gradients():
    torch.manual_seed(0)
    model = InteractionEdgeClassifier(hit_dim=12, hidden=8, steps=2)
    event = four_hits()
    logits = model.edge_logits(event, EDGES)
    assert logits.shape == (4,)
    target = torch.tensor([1.0, 1.0, 0.0, 0.0])
    loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, target)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in model.edge_updates[0].parameters())


def test_an_edge_is_judged_the_same_whichever_way_it_is_named():
    torch.manual_seed(0)
    model = InteractionEdgeClassifier(hit_dim=12, hidden=8, steps=2)
    event = four_hits()
    forward = model.edge_logits(event, EDGES)
    backward = model.edge_logits(event, EDGES.flip(0))
    torch.testing.assert_close(forward, backward)


def test_chunked_inference_matches_the_whole_graph_and_the_concatenated_inputs():
    torch.manual_seed(0)
    model = InteractionEdgeClassifier(hit_dim=12, hidden=8, steps=2)
    event = four_hits()
    whole = model.edge_logits(event, EDGES)
    for chunk in (1, 3, 4):
        torch.testing.assert_close(model.edge_logits(event, EDGES, chunk), whole)
    # The first layer on the gathered hit products equals it on [e, h_i, h_j], in value
    # and in gradient (the edge term is added in place), with and without edge inputs.
    inner, outer = EDGES
    for own in (3, 0):
        hits = torch.randn(4, 5, requires_grad=True)
        edges = torch.randn(4, own, requires_grad=True)
        mlp = torch.nn.Sequential(torch.nn.Linear(10 + own, 6), torch.nn.ReLU(),
                                  torch.nn.Linear(6, 2))
        for edge_first, inputs in ((True, [edges, hits[inner], hits[outer]]),
                                   (False, [hits[inner], hits[outer], edges])):
            fast = mlp_on_edges(mlp, inner, outer, end_products(mlp[0], hits, edge_first),
                                edges, edge_first)
            plain = mlp(torch.cat(inputs, dim=1))
            torch.testing.assert_close(fast, plain)
            grads = [torch.autograd.grad(out.sum(), (hits, mlp[0].weight, edges))
                     for out in (fast, plain)]
            for fast_grad, plain_grad in zip(*grads, strict=True):
                torch.testing.assert_close(fast_grad, plain_grad)


def test_training_on_sectors_learns_the_four_hit_graph():
    event = four_hits()
    settings = RefinementSettings(architecture="interaction", hidden=(16,), steps=2, sectors=4,
                                  epochs=100, schedule=Schedule(0.003, 1000, 1e-5))
    model, history = train_refinement([event], [EDGES], settings, seed=1, progress=False)
    assert history[-1]["loss"] < history[0]["loss"]
    assert history[0]["steps"] == 2  # the two tracks lie in two of the four phi sectors
    p = edge_probabilities(model, event, EDGES, "cpu")
    assert (p[:2] > 0.5).all()
    assert (p[2:] < 0.5).all()


def test_phi_sectors_split_edges_by_their_inner_hit():
    sectors = phi_sectors(four_hits(), EDGES, 4)
    assert sum(s.shape[1] for s in sectors) == 4
    assert len(sectors) == 2  # hits at phi 0 and pi / 2


def test_the_interaction_model_saves_and_loads(tmp_path):
    settings = RefinementSettings(architecture="interaction", hidden=(8,), steps=2)
    arguments = settings.model_arguments(12)
    model = edge_classifier(**arguments)
    save_module(tmp_path / "refinement.pt", "refinement", model, arguments)
    again = load_module(tmp_path / "refinement.pt", "refinement")
    event = four_hits()
    torch.testing.assert_close(again.edge_logits(event, EDGES), model.edge_logits(event, EDGES))
    with pytest.raises(ValueError, match="architecture"):
        edge_classifier(architecture="transformer", hit_dim=12)


def test_consecutive_pairs_follow_each_particle_outwards():
    # Particle 5: hits at r 30, 70, 110 given out of order; particle 6: two hits; noise.
    positions = np.array([[70, 0, 0], [0, 30, 0], [30, 0, 0], [110, 0, 0], [0, 70, 0],
                          [50, 50, 0]], dtype=float)
    particle_id = np.array([5, 6, 5, 5, 6, 0])
    pairs = consecutive_pairs(particle_id, positions)
    assert sorted(map(tuple, pairs.T.tolist())) == sorted([(2, 0), (0, 3), (1, 4)])
    settings = EmbeddingSettings(truth="consecutive", hard_negatives=0)
    _, same, _ = sample_pairs(torch.tensor(particle_id), None, settings,
                                    np.random.default_rng(0), torch.tensor(positions))
    assert int(same.sum()) == 3
