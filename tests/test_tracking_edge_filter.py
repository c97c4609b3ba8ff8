"""The edge filter before the refinement: its threshold, its training and its checkpoint."""

import numpy as np
import pytest
import torch

from hepclust.tracking.checkpoints import load_module, save_module
from hepclust.tracking.edge_filter import (
    EdgeFilter,
    _training_rows,
    efficiency_threshold,
    top_per_key,
    train_edge_filter,
)
from hepclust.tracking.hit_features import TrackingEvent, hit_features, same_particle
from hepclust.tracking.pair_features import oriented


def fan_of_tracks(seed: int, particles: int = 12, layers: int = 5) -> tuple[TrackingEvent,
                                                                            torch.Tensor]:
    """Straight tracks from the origin on `layers` barrel layers, and as candidates every
    pair of hits on adjacent layers: one true edge per particle and layer pair, the rest
    false."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(-np.pi, np.pi, particles)
    cot = rng.uniform(-1.5, 1.5, particles)
    r = np.repeat(40.0 * np.arange(1, layers + 1), particles)
    phi, cot = np.tile(phi, layers), np.tile(cot, layers)
    x, y, z = r * np.cos(phi), r * np.sin(phi), r * cot
    layer = np.repeat(2 * np.arange(1, layers + 1), particles)
    event = TrackingEvent(features=hit_features(x, y, z, np.full(len(x), 8), layer),
                          positions=torch.tensor(np.stack([x, y, z], axis=1),
                                                 dtype=torch.float32),
                          particle_id=torch.tensor(np.tile(np.arange(1, particles + 1), layers)))
    inner, outer = np.meshgrid(np.arange(particles), np.arange(particles), indexing="ij")
    pairs = [np.stack([inner.ravel() + k * particles, outer.ravel() + (k + 1) * particles])
             for k in range(layers - 1)]
    return event, torch.from_numpy(np.concatenate(pairs, axis=1))


def untrained_filter(seed: int) -> tuple[TrackingEvent, torch.Tensor, EdgeFilter, torch.Tensor]:
    """A fan of tracks with its candidates, an untrained filter (its threshold -inf, so
    that the cap and the gap decide) and the filter's logits of the candidates."""
    torch.manual_seed(0)
    event, edges = fan_of_tracks(seed)
    model = EdgeFilter(event.features.shape[1], (8,))
    with torch.no_grad():
        return event, edges, model, model.edge_logits(event, edges)


def test_the_threshold_keeps_the_asked_share_of_true_edges():
    logits = torch.arange(10.0)
    threshold = efficiency_threshold(logits, 0.8)
    assert int((logits > threshold).sum()) == 8
    assert efficiency_threshold(logits, 1.0) == float("-inf")
    with pytest.raises(ValueError, match="efficiency"):
        train_edge_filter([fan_of_tracks(0)[0]], [fan_of_tracks(0)[1]], efficiency=0.0)


@pytest.mark.parametrize("hit_hidden", [(), (6,), (6, 5)])
def test_the_gathered_first_layer_equals_the_mlp_on_the_whole_inputs(hit_hidden):
    torch.manual_seed(0)
    event, edges = fan_of_tracks(1)
    model = EdgeFilter(event.features.shape[1], (8, 8), hit_hidden)
    model.hit_mean.normal_()
    model.pair_scale.uniform_(0.5, 2.0)
    expected = _training_rows(model, [event], [edges]).logits(model, torch.arange(edges.shape[1]))
    torch.testing.assert_close(model.edge_logits(event, edges, chunk=50), expected)


@pytest.mark.parametrize("hit_hidden", [(), (16,)])
def test_the_filter_drops_false_edges_and_keeps_its_true_edges_after_a_round_trip(tmp_path,
                                                                                 hit_hidden):
    events, candidates = zip(*(fan_of_tracks(seed) for seed in range(4)), strict=True)
    model, history = train_edge_filter(events, candidates, hidden=(16, 16), epochs=6, lr=0.01,
                                       efficiency=0.95, batch_size=256, seed=3, progress=False,
                                       hit_hidden=hit_hidden)
    assert history[-1]["efficiency"] >= 0.95
    assert history[-1]["loss"] < history[0]["loss"]
    held_out, edges = fan_of_tracks(10)
    kept = model.keep(held_out, edges)
    true_kept = int(same_particle(held_out.particle_id, kept).sum())
    true_all = int(same_particle(held_out.particle_id, edges).sum())
    assert true_kept >= 0.75 * true_all  # 0.95 on the 4 training events
    assert kept.shape[1] < 0.5 * edges.shape[1]  # 11 of each 12 candidates are false
    save_module(tmp_path / "filter.pt", "filter", model,
                {"hit_dim": held_out.features.shape[1], "hidden": [16, 16],
                 "hit_hidden": list(hit_hidden)}, history)
    loaded = load_module(tmp_path / "filter.pt", "filter")
    assert float(loaded.threshold) == float(model.threshold)
    assert torch.equal(loaded.keep(held_out, edges), kept)


def test_the_cap_keeps_each_hits_best_edges_per_side_and_nothing_below_both_ends():
    event, edges, model, logits = untrained_filter(2)
    kept = model.keep(event, edges, max_per_hit=2)
    assert 0 < kept.shape[1] < edges.shape[1]
    kept_pairs = set(map(tuple, kept.T.tolist()))
    for side in (0, 1):
        for hit in edges[side].unique().tolist():
            mine = (edges[side] == hit).nonzero().squeeze(1)
            best = mine[logits[mine].argsort(descending=True)[:2]]
            assert {tuple(edges[:, e].tolist()) for e in best.tolist()} <= kept_pairs
    for first, second in kept_pairs:  # each kept edge is in the top 2 of one of its ends
        column = ((edges[0] == first) & (edges[1] == second)).nonzero().item()
        ranks = [int((logits[edges[side] == edges[side, column]] > logits[column]).sum())
                 for side in (0, 1)]
        assert min(ranks) < 2
    assert torch.equal(model.keep(event, edges, max_per_hit=None), edges)


def test_the_gap_keeps_only_edges_near_the_best_of_one_of_their_hits():
    event, edges, model, logits = untrained_filter(2)
    inner, outer = oriented(event.positions, edges)
    spread = float(logits.max() - logits.min())
    gap = spread / 10
    kept = model.keep(event, edges, max_per_hit=2, max_gap=gap)
    capped = model.keep(event, edges, max_per_hit=2)
    assert 0 < kept.shape[1] < capped.shape[1]
    kept_pairs = set(map(tuple, kept.T.tolist()))
    assert kept_pairs <= set(map(tuple, capped.T.tolist()))
    for column in range(edges.shape[1]):
        near = [bool(logits[column] >= logits[hit == hit[column]].max() - gap
                     and int((logits[hit == hit[column]] > logits[column]).sum()) < 2)
                for hit in (inner, outer)]
        assert (tuple(edges[:, column].tolist()) in kept_pairs) == any(near)
    # Without a cap, each hit's best edge per side stays whatever the gap.
    assert model.keep(event, edges, max_gap=0.0).shape[1] > 0
    assert torch.equal(model.keep(event, edges, max_gap=spread + 1), edges)


def test_keep_chunk_by_chunk_keeps_what_it_keeps_at_once():
    event, edges, model, logits = untrained_filter(3)
    ordered = logits.sort().values  # a threshold halfway between two logits, far from all
    model.threshold.fill_(float(ordered[len(ordered) // 2: len(ordered) // 2 + 2].mean()))
    above = edges[:, logits > model.threshold]
    assert torch.equal(model.keep(event, edges, chunk=7), above)
    whole = model.keep(event, edges, max_per_hit=2, max_gap=0.5, chunk=edges.shape[1])
    assert 0 < whole.shape[1] < above.shape[1]
    for chunk in (7, 50):
        assert torch.equal(model.keep(event, edges, max_per_hit=2, max_gap=0.5, chunk=chunk),
                           whole)


def test_the_top_per_key_are_the_k_highest_of_each_key_ties_to_the_earlier():
    score = torch.tensor([0.1, 0.5, 0.9, 0.7, 0.9, 0.0])
    key = torch.tensor([3, 1, 3, 1, 3, 2])
    assert top_per_key(score, key, 1, 4).tolist() == [False, False, True, True, False, True]
    assert top_per_key(score, key, 2, 4).tolist() == [False, True, True, True, True, True]
    assert top_per_key(score, torch.zeros(6, dtype=torch.long), 3, 1).tolist() == [
        False, False, True, True, True, False]


@pytest.mark.parametrize("keys", [40, 200])  # about 12 and 2 entries per key
def test_the_top_per_key_match_ranks_by_sorting(keys):
    generator = torch.Generator().manual_seed(0)
    score = torch.randint(0, 20, (500,), generator=generator).float()  # many ties
    key = torch.randint(0, keys, (500,), generator=generator)
    order = sorted(range(500), key=lambda i: (key[i].item(), -score[i].item(), i))
    rank, previous, count = torch.empty(500, dtype=torch.long), None, 0
    for i in order:
        count = count + 1 if key[i] == previous else 0
        rank[i], previous = count, key[i]
    for k in (1, 3, 8):
        assert torch.equal(top_per_key(score, key, k, keys), rank < k)
