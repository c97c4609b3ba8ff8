"""Edge refinement: an MLP on a candidate edge's two hits and their pair features gives
the probability that both hits belong to one track; edges above a threshold are kept
(Choma's thesis, sections 2.4.5 and 3.1.1).

    p_ij = phi'(x_i, x_j, z_ij) in [0, 1]         (eq. 2.15)
    E' = {e_ij in E : p_ij > t}                    (eq. 2.16)

phi' has four layers, 2048 -> 2048 -> 2048 -> 1, trained with Adam from a learning rate
of 0.001. Its input is [features of the inner hit, features of the outer hit, pair
features] (`hepclust.tracking.pair_features`, the inner hit having the smaller r), so an
edge's probability does not depend on the order in which it names its hits.

Deviation: the thesis trains phi' on the embedding stage's pairs (all true pairs, random
and hard false pairs); we train it on what it will see, the candidate edges of the
embedding's graph of each training event, with the binary cross-entropy weighted so that
an event's true and false edges each carry half of its weight.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from hepclust.tracking.embedding import make_mlp
from hepclust.tracking.hit_features import TrackingEvent, same_particle
from hepclust.tracking.pair_features import PAIR_FEATURES, oriented, pair_features
from hepclust.ucluster.training import Schedule

log = logging.getLogger(__name__)


class EdgeClassifier(nn.Module):
    """The logit of p_ij for each edge. Shapes: inputs (E, 2 F + 5) -> (E,)."""

    def __init__(self, hit_dim: int, hidden: Sequence[int] = (2048, 2048, 2048),
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.mlp = make_mlp(2 * hit_dim + len(PAIR_FEATURES), [*hidden, 1], activation)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.mlp(inputs).squeeze(-1)


def edge_inputs(event: TrackingEvent, edge_index: torch.Tensor) -> torch.Tensor:
    """[inner hit features, outer hit features, pair features] of each edge: (E, 2 F + 5),
    on the device of `event`."""
    edge_index = edge_index.to(event.features.device)
    inner, outer = oriented(event.positions, edge_index)
    return torch.cat([event.features[inner], event.features[outer],
                      pair_features(event.positions, edge_index)], dim=1)


@torch.no_grad()
def edge_probabilities(model: nn.Module, event: TrackingEvent, edge_index: torch.Tensor,
                       device: torch.device | str, batch_size: int = 65_536) -> torch.Tensor:
    """p_ij of each edge of `edge_index` (2, E), on `device`, the model in evaluation mode."""
    model.to(device).eval()
    inputs = edge_inputs(event.to(device), edge_index)
    if not len(inputs):
        return torch.zeros(0, device=device)
    return torch.cat([torch.sigmoid(model(chunk)) for chunk in inputs.split(batch_size)])


def refine(edge_index: torch.Tensor, probabilities: torch.Tensor,
           threshold: float = 0.5) -> torch.Tensor:
    """The edges whose probability exceeds `threshold` (eq. 2.16)."""
    return edge_index[:, probabilities.to(edge_index.device) > threshold]


@dataclass(frozen=True)
class RefinementSettings:
    hidden: tuple[int, ...] = (2048, 2048, 2048)
    epochs: int = 10
    batch_size: int = 8192  # edges per step
    schedule: Schedule = field(default_factory=lambda: Schedule(1e-3, 10, 1e-5))


def balanced_weights(same: torch.Tensor) -> torch.Tensor:
    """Weights (E,) averaging 1 whose true and false edges each carry half of the total
    (all 1 if either class is absent)."""
    n_true = int(same.sum())
    n_false = len(same) - n_true
    if not n_true or not n_false:
        return torch.ones(len(same), device=same.device)
    return torch.where(same, len(same) / (2.0 * n_true), len(same) / (2.0 * n_false))


def train_refinement(events: Sequence[TrackingEvent], candidates: Sequence[torch.Tensor],
                     settings: RefinementSettings = RefinementSettings(), seed: int = 0,
                     device: torch.device | str = "cpu",
                     progress: bool = True) -> tuple[EdgeClassifier, list[dict]]:
    """Train phi' on the candidate edges (2, E) of each event (e.g. `embedding_graph`);
    returns the model (on `device`) and the history, one dict per epoch. The event and
    batch order of an epoch depend only on (seed, epoch)."""
    device = torch.device(device)
    torch.manual_seed(seed)
    model = EdgeClassifier(events[0].features.shape[1], settings.hidden).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.schedule.lr)
    data = []
    for event, edge_index in zip(events, candidates, strict=True):
        event = event.to(device)
        same = same_particle(event.particle_id, edge_index.to(device))
        data.append((edge_inputs(event, edge_index), same, balanced_weights(same)))
    history = []
    for epoch in range(settings.epochs):
        lr = settings.schedule.apply(optimizer, epoch)
        rng = np.random.default_rng([seed, epoch])
        began, total, edges, true_edges = time.perf_counter(), 0.0, 0, 0
        model.train()
        for index in tqdm(rng.permutation(len(data)),
                          desc=f"refinement epoch {epoch + 1}/{settings.epochs}", unit="event",
                          leave=False, disable=not progress):
            inputs, same, weights = data[index]
            order = torch.from_numpy(rng.permutation(len(inputs))).to(device)
            for batch in order.split(settings.batch_size):
                optimizer.zero_grad(set_to_none=True)
                loss = F.binary_cross_entropy_with_logits(model(inputs[batch]),
                                                          same[batch].float(), weights[batch])
                loss.backward()
                optimizer.step()
                total += loss.item() * len(batch)
            edges, true_edges = edges + len(inputs), true_edges + int(same.sum())
        history.append({"epoch": epoch, "lr": lr, "loss": total / max(edges, 1),
                        "edges": edges, "true_edges": true_edges,
                        "seconds": time.perf_counter() - began})
        log.info("refinement epoch %d/%d: loss %.4f, %.1f s", epoch + 1, settings.epochs,
                 history[-1]["loss"], history[-1]["seconds"])
    return model, history
