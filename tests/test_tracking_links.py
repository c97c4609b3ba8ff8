import math

import pytest
import torch

from hepclust.tracking.checkpoints import load_module, save_module
from hepclust.tracking.links import (
    LINK_FEATURES,
    NO_NEIGHBOUR,
    link_features,
    link_scores,
    train_link_scorer,
)


def straight_track_and_a_kink():
    """Hits 0-3 of a straight track from the origin on layers 1-4 (slope dz/dr = 0.5),
    and hit 4 on layer 4, off to the side of hit 2's continuation."""
    positions = torch.tensor([[100.0 * r, 0.0, 50.0 * r] for r in (1, 2, 3, 4)]
                             + [[400.0, 100.0, 200.0]])
    layers = torch.tensor([1, 2, 3, 4, 4])
    edges = torch.tensor([[0, 1], [2, 1], [2, 3], [2, 4]]).T  # 2-1: given outer first
    probability = torch.tensor([0.9, 0.9, 0.8, 0.7])
    return positions, layers, edges, probability


def test_link_features_of_a_straight_track_and_a_kink():
    positions, layers, edges, probability = straight_track_and_a_kink()
    features = link_features(positions, layers, edges, probability)
    assert features.shape == (4, len(LINK_FEATURES))
    named = dict(zip(LINK_FEATURES, features.T, strict=True))
    # 1 -> 2 continues 0 -> 1 and goes on to 2 -> 3 (hit 2's most probable outward edge).
    for key in ("inner_slope_change", "inner_turn", "outer_slope_change", "outer_turn"):
        assert named[key][1] == pytest.approx(0.0, abs=1e-6)
    assert named["inner_neighbour_log_p"][1] == pytest.approx(math.log(0.9), abs=1e-5)
    assert named["outer_neighbour_log_p"][1] == pytest.approx(math.log(0.8), abs=1e-5)
    # 2 -> 4 turns away from 1 -> 2 and changes its slope.
    assert named["inner_turn"][3] == pytest.approx(math.atan2(100.0, 100.0), abs=1e-5)
    assert named["inner_slope_change"][3] > 0.01
    # Hit 0 has no inward edge; hits 3 and 4 no outward one.
    assert named["inner_turn"][0] == NO_NEIGHBOUR
    assert named["outer_turn"][2] == NO_NEIGHBOUR == named["outer_turn"][3]
    assert named["logit_p"][3] == pytest.approx(math.log(0.7 / 0.3), abs=1e-5)
    assert named["same_layer"].tolist() == [0.0] * 4


def test_the_link_scorer_learns_to_rank_smooth_continuations_first(tmp_path):
    generator = torch.Generator().manual_seed(0)
    n = 2000
    true = torch.rand(n, generator=generator) < 0.5
    features = torch.rand(n, len(LINK_FEATURES), generator=generator)
    # The same probabilities for both classes; only the turning angle tells them apart.
    features[:, 2] = torch.where(true, 0.05, 0.5) * torch.rand(n, generator=generator)
    model, history = train_link_scorer([features[:1000], features[1000:]],
                                       [true[:1000], true[1000:]], hidden=16, epochs=20,
                                       lr=0.01)
    assert len(history) == 20
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert torch.allclose(model.mean, features.mean(dim=0))
    with torch.no_grad():
        scores = torch.sigmoid(model(features))
    assert scores[true].min() > scores[~true].median()
    path = tmp_path / "links.pt"
    save_module(path, "links", model, {"hidden": 16}, history)
    loaded = load_module(path, "links")
    with torch.no_grad():
        assert torch.equal(loaded(features), model(features))
    with pytest.raises(ValueError, match="no edges"):
        train_link_scorer([features[:0]], [true[:0]])


def test_link_scores_are_probabilities_of_each_edge():
    positions, layers, edges, probability = straight_track_and_a_kink()
    features = link_features(positions, layers, edges, probability)
    model, _ = train_link_scorer([features], [torch.tensor([True, True, True, False])],
                                 hidden=8, epochs=50, lr=0.05)
    scores = link_scores(model, positions, layers, edges, probability)
    assert scores.shape == (4,)
    assert ((scores >= 0) & (scores <= 1)).all()
    assert scores[3] < 0.5 < scores[:3].min()
