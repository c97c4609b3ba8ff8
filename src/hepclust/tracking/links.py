"""The order in which the layer union joins the refined edges: a small network that scores
each edge from its refinement probability and the geometry of the track it would extend.

The refinement scores each edge on its own; the union then joins edges in that order,
and a hit's first outward join decides which track it continues. Where two edges leave
a hit with similar probabilities, the right one is usually the one that continues the
hit's best inward edge smoothly: a helix turns by a constant angle per length in the
transverse plane and keeps its slope in (r, z). Each edge, oriented from its inner hit
a to its outer hit b, is described by

* the logit of its refinement probability;
* at a, with the most probable inward edge z -> a: the change of the (r, z) slope angle
  from z -> a to a -> b, and the transverse turning angle between them (-1 without one);
* at b, the same with the most probable outward edge b -> c;
* the log-probabilities of those two neighbouring edges;
* whether a and b lie on one layer.

Ordering the union by this score instead of the probability took two spare simulated
events from 0.834 / 0.854 to 0.890 / 0.883, and the default run's held-out events from
0.853 to 0.896 (docs/tracking.md).
"""

import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hepclust.tracking.layer_union import most_probable_per_key
from hepclust.tracking.pair_features import oriented

LINK_FEATURES = ("logit_p", "inner_slope_change", "inner_turn", "outer_slope_change",
                 "outer_turn", "inner_neighbour_log_p", "outer_neighbour_log_p", "same_layer")
NO_NEIGHBOUR = -1.0
EPSILON = 1e-6


def _best_neighbour(at: torch.Tensor, other: torch.Tensor, probability: torch.Tensor,
                    num_hits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For each hit, the `other` end of its most probable edge among those whose `at` end
    it is, and that probability (-1 and 0 for hits without one)."""
    first = torch.from_numpy(most_probable_per_key(at.cpu().numpy(),
                                                   probability.cpu().numpy())).to(at.device)
    neighbour = torch.full((num_hits,), -1, dtype=torch.long, device=at.device)
    best = torch.zeros(num_hits, dtype=probability.dtype, device=at.device)
    neighbour[at[first]] = other[first]
    best[at[first]] = probability[first]
    return neighbour, best


def _bends(before: torch.Tensor, here: torch.Tensor, after: torch.Tensor,
           positions: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(change of the (r, z) slope angle, absolute transverse turning angle) at `here`
    between the segments before -> here and here -> after; NO_NEIGHBOUR where not `valid`."""
    before, after = before.clamp(min=0), after.clamp(min=0)
    p0, p1, p2 = positions[before], positions[here], positions[after]
    r0, r1, r2 = (torch.hypot(p[:, 0], p[:, 1]) for p in (p0, p1, p2))
    slope_in = torch.atan2(p1[:, 2] - p0[:, 2], r1 - r0)
    slope_out = torch.atan2(p2[:, 2] - p1[:, 2], r2 - r1)
    u, v = p1[:, :2] - p0[:, :2], p2[:, :2] - p1[:, :2]
    turn = torch.atan2(u[:, 0] * v[:, 1] - u[:, 1] * v[:, 0], (u * v).sum(dim=1)).abs()
    missing = torch.full_like(turn, NO_NEIGHBOUR)
    return (torch.where(valid, (slope_out - slope_in).abs(), missing),
            torch.where(valid, turn, missing))


def link_features(positions: torch.Tensor, layers: torch.Tensor, edge_index: torch.Tensor,
                  probability: torch.Tensor) -> torch.Tensor:
    """`LINK_FEATURES` (E, 8) of the edges `edge_index` (2, E) with refinement
    `probability` (E,), between hits at `positions` (N, 3) in mm on `layers` (N,)."""
    positions = positions.double()
    probability = probability.double().clamp(EPSILON, 1 - EPSILON)
    inner, outer = oriented(positions, edge_index)
    num_hits = len(positions)
    across = layers[inner] != layers[outer]
    # Neighbours come from edges between layers: a same-layer pair does not continue a track.
    inward, inward_p = _best_neighbour(outer[across], inner[across], probability[across],
                                       num_hits)
    outward, outward_p = _best_neighbour(inner[across], outer[across], probability[across],
                                         num_hits)
    before, after = inward[inner], outward[outer]
    inner_slope, inner_turn = _bends(before, inner, outer, positions,
                                     (before >= 0) & (before != outer))
    outer_slope, outer_turn = _bends(inner, outer, after, positions,
                                     (after >= 0) & (after != inner))
    return torch.stack([torch.logit(probability), inner_slope, inner_turn, outer_slope,
                        outer_turn, torch.log(inward_p[inner] + EPSILON),
                        torch.log(outward_p[outer] + EPSILON), (~across).double()],
                       dim=1).float()


class LinkScorer(nn.Module):
    """The logit of an edge's link score from its `LINK_FEATURES`, standardised by the
    training set's mean and spread (kept with the weights)."""

    def __init__(self, hidden: int = 64):
        super().__init__()
        self.register_buffer("mean", torch.zeros(len(LINK_FEATURES)))
        self.register_buffer("scale", torch.ones(len(LINK_FEATURES)))
        self.network = nn.Sequential(nn.Linear(len(LINK_FEATURES), hidden), nn.ReLU(),
                                     nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.network((features - self.mean) / self.scale).squeeze(-1)


def train_link_scorer(features: Sequence[torch.Tensor], labels: Sequence[torch.Tensor],
                      hidden: int = 64, epochs: int = 30, lr: float = 0.01,
                      batch_size: int = 4096, seed: int = 0) -> tuple[LinkScorer, list[dict]]:
    """A `LinkScorer` trained with the binary cross-entropy on the edges of all events
    (their features (E, 8) and whether they join hits of one particle), and its history."""
    torch.manual_seed(seed)
    inputs = torch.cat(list(features))
    target = torch.cat(list(labels)).float()
    if len(inputs) == 0:
        raise ValueError("no edges to train the link scorer on")
    model = LinkScorer(hidden)
    model.mean.copy_(inputs.mean(dim=0))
    model.scale.copy_(inputs.std(dim=0).clamp(min=EPSILON) if len(inputs) > 1
                      else torch.ones(len(LINK_FEATURES)))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    history = []
    for epoch in range(epochs):
        began, total = time.perf_counter(), 0.0
        for batch in torch.from_numpy(rng.permutation(len(inputs))).split(batch_size):
            optimizer.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(model(inputs[batch]), target[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        history.append({"epoch": epoch, "loss": total / len(inputs), "edges": len(inputs),
                        "seconds": time.perf_counter() - began})
    return model.eval(), history


@torch.no_grad()
def link_scores(scorer: nn.Module, positions: torch.Tensor, layers: torch.Tensor,
                edge_index: torch.Tensor, probability: torch.Tensor) -> torch.Tensor:
    """The link score in (0, 1) of each edge (2, E): the union's order."""
    device = next(scorer.parameters()).device
    features = link_features(positions, layers, edge_index, probability)
    return torch.sigmoid(scorer(features.to(device))).to(probability.device)
