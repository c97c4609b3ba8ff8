"""Metric learning: an MLP embeds each hit in R^d so that hits of one track lie close
together (Choma's thesis, sections 2.4.2-2.4.3 and 3.1.1).

The embedding is a three-layer MLP, 256 -> 256 -> 4, trained with Adam from a learning
rate of 0.001 on the hinge embedding loss of pairs of hits at Euclidean distance d:
d for a true pair (pulled together), max(0, margin - d) for a false one (pushed beyond
the margin, 1), as ``torch.nn.functional.hinge_embedding_loss`` with targets +1 / -1.
(Eq. 2.8 of the thesis, max(0, 1 - y d) with y in {0, 1} and the same point twice, is a
misprint of this.) Each epoch draws, in each event, its true pairs (at most
`max_true_pairs`), as many random false pairs, and, from epoch `hard_negative_start` on,
hard negatives: false pairs among each hit's `hard_negative_k` nearest neighbours in the
current embedding.

Deviations: the thesis mines all the true pairs of 10 events with as many random false
pairs once, then adds 10 more events with hard false pairs once the model "has begun to
converge", and decays the rate ten-fold on a validation plateau. Here the pairs are drawn
again every epoch, hard negatives come from the same events, and the rate follows
`hepclust.ucluster.training.Schedule` (halved every few epochs): no validation set.
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

from hepclust.tracking.graph import neighbour_graph
from hepclust.tracking.hit_features import (
    TrackingEvent,
    consecutive_pairs,
    same_particle,
    true_pairs,
)
from hepclust.ucluster.training import Schedule

log = logging.getLogger(__name__)

CPU_BATCH = 1_024  # hits per batch: the 256-wide layers stay in the cache (60,000 hits:
                  # 0.14 s against 0.23 s in one batch)


def make_mlp(in_dim: int, sizes: Sequence[int], activation: type[nn.Module] = nn.ReLU,
             output_activation: type[nn.Module] | None = None) -> nn.Sequential:
    """Linear layers of the given output `sizes`, `activation` between them and
    `output_activation` (if any) after the last."""
    layers: list[nn.Module] = []
    for index, size in enumerate(sizes):
        layers.append(nn.Linear(in_dim, size))
        last = index == len(sizes) - 1
        if not last or output_activation is not None:
            layers.append(activation() if not last else output_activation())
        in_dim = size
    return nn.Sequential(*layers)


class HitEmbedding(nn.Module):
    """phi(theta, x) in R^d of each hit (eq. 2.6). Shapes: features (N, F) -> (N, d)."""

    def __init__(self, in_dim: int, hidden: Sequence[int] = (256, 256), embedding_dim: int = 4,
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.mlp = make_mlp(in_dim, [*hidden, embedding_dim], activation)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mlp(features)


def hinge_loss(first: torch.Tensor, second: torch.Tensor, same: torch.Tensor,
               margin: float = 1.0) -> torch.Tensor:
    """Mean hinge embedding loss of pairs of embeddings (P, d), `same` (P,) bool: the
    distance of true pairs, max(0, margin - distance) of false ones."""
    distance = F.pairwise_distance(first, second)
    target = same.to(distance.dtype) * 2 - 1
    return F.hinge_embedding_loss(distance, target, margin=margin)


@dataclass(frozen=True)
class EmbeddingSettings:
    truth: str = "all_pairs"  # or "consecutive": hits that follow each other on a track
    hidden: tuple[int, ...] = (256, 256)
    embedding_dim: int = 4
    epochs: int = 20
    batch_size: int = 8192  # pairs per step
    schedule: Schedule = field(default_factory=lambda: Schedule(1e-3, 10, 1e-5))
    margin: float = 1.0
    max_true_pairs: int = 200_000  # per event and epoch
    random_negatives: float = 1.0  # per true pair
    hard_negatives: float = 1.0  # per true pair, at most
    hard_negative_k: int = 10
    hard_negative_start: int = 1  # first epoch (from 0) that mines hard negatives


def sample_pairs(particle_id: torch.Tensor, embedding: torch.Tensor | None,
                 settings: EmbeddingSettings, rng: np.random.Generator,
                 positions: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(pairs (2, P), same (P,), hard) of one event, on the CPU: its true pairs (every
    pair of a particle's hits, or with ``truth="consecutive"`` the hits that follow each
    other along it, which needs the hits' `positions`; at most `max_true_pairs`), random
    false pairs and, if an `embedding` (N, d) is given, false pairs among its kNN graph;
    `hard` counts those."""
    particle_id = particle_id.cpu()
    if settings.truth == "consecutive":
        positives = consecutive_pairs(particle_id, positions)
    elif settings.truth == "all_pairs":
        positives = true_pairs(particle_id)
    else:
        raise ValueError(f"truth must be 'all_pairs' or 'consecutive', not {settings.truth!r}")
    if positives.shape[1] > settings.max_true_pairs:
        keep = rng.choice(positives.shape[1], settings.max_true_pairs, replace=False)
        positives = positives[:, torch.from_numpy(np.sort(keep))]
    n_true = positives.shape[1]
    negatives = _random_false_pairs(particle_id, round(settings.random_negatives * n_true), rng)
    hard = torch.zeros((2, 0), dtype=torch.int64)
    if embedding is not None and settings.hard_negatives > 0:
        graph = neighbour_graph(embedding, k=settings.hard_negative_k).cpu()
        hard = graph[:, ~same_particle(particle_id, graph)]
        most = round(settings.hard_negatives * n_true)
        if hard.shape[1] > most:
            hard = hard[:, torch.from_numpy(np.sort(rng.choice(hard.shape[1], most,
                                                               replace=False)))]
    pairs = torch.cat([positives, negatives, hard], dim=1)
    same = torch.zeros(pairs.shape[1], dtype=torch.bool)
    same[:n_true] = True
    return pairs, same, hard.shape[1]


def _random_false_pairs(particle_id: torch.Tensor, count: int,
                        rng: np.random.Generator) -> torch.Tensor:
    """`count` pairs of distinct hits drawn uniformly among the false pairs."""
    n = len(particle_id)
    if count == 0 or n < 2:
        return torch.zeros((2, 0), dtype=torch.int64)
    found, total = [], 0
    while total < count:
        draw = torch.from_numpy(rng.integers(0, n, size=(2, int(count * 1.2) + 16)))
        draw = draw[:, (draw[0] != draw[1]) & ~same_particle(particle_id, draw)]
        found.append(draw)
        total += draw.shape[1]
    return torch.cat(found, dim=1)[:, :count]


@torch.no_grad()
def embed(model: nn.Module, features: torch.Tensor, device: torch.device | str,
          batch_size: int | None = None) -> torch.Tensor:
    """The embedding (N, d) of every hit, on `device`, the model in evaluation mode,
    `batch_size` hits at a time (by default all on a GPU, `CPU_BATCH` on a CPU)."""
    model.to(device).eval()
    batch_size = batch_size or (CPU_BATCH if torch.device(device).type == "cpu"
                                else max(len(features), 1))
    return torch.cat([model(chunk.to(device)) for chunk in features.split(batch_size)])


def embedding_graph(model: nn.Module, event: TrackingEvent, device: torch.device | str,
                    k: int | None = None, r: float | None = None) -> torch.Tensor:
    """The event's candidate edges (2, E), on `device`: each hit's k nearest neighbours,
    its neighbours within r, or both, in the learned embedding (see `neighbour_graph`)."""
    return neighbour_graph(embed(model, event.features, device), k=k, r=r)


def train_embedding(events: Sequence[TrackingEvent],
                    settings: EmbeddingSettings = EmbeddingSettings(), seed: int = 0,
                    device: torch.device | str = "cpu",
                    progress: bool = True) -> tuple[HitEmbedding, list[dict]]:
    """Train the hit embedding on `events`; returns the model (on `device`) and the
    history, one dict per epoch. The event order and the pairs of an epoch depend only on
    (seed, epoch)."""
    device = torch.device(device)
    torch.manual_seed(seed)
    model = HitEmbedding(events[0].features.shape[1], settings.hidden,
                         settings.embedding_dim).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.schedule.lr)
    history = []
    for epoch in range(settings.epochs):
        lr = settings.schedule.apply(optimizer, epoch)
        rng = np.random.default_rng([seed, epoch])
        began, total, counts = time.perf_counter(), 0.0, np.zeros(3, dtype=np.int64)
        order = rng.permutation(len(events))
        for index in tqdm(order, desc=f"embedding epoch {epoch + 1}/{settings.epochs}",
                          unit="event", leave=False, disable=not progress):
            features = events[index].features.to(device)
            mined = epoch >= settings.hard_negative_start and settings.hard_negatives > 0
            embedding = embed(model, features, device) if mined else None
            pairs, same, hard = sample_pairs(events[index].particle_id, embedding, settings, rng,
                                             events[index].positions)
            model.train()
            total += _train_pairs(model, optimizer, features, pairs.to(device), same.to(device),
                                  settings, rng)
            counts += (pairs.shape[1], int(same.sum()), hard)
        history.append({"epoch": epoch, "lr": lr, "loss": total / max(int(counts[0]), 1),
                        "pairs": int(counts[0]), "true_pairs": int(counts[1]),
                        "hard_negatives": int(counts[2]),
                        "seconds": time.perf_counter() - began})
        log.info("embedding epoch %d/%d: loss %.4f, %.1f s", epoch + 1, settings.epochs,
                 history[-1]["loss"], history[-1]["seconds"])
    return model, history


def _train_pairs(model: nn.Module, optimizer: torch.optim.Optimizer, features: torch.Tensor,
                 pairs: torch.Tensor, same: torch.Tensor, settings: EmbeddingSettings,
                 rng: np.random.Generator) -> float:
    """One pass of Adam steps over shuffled batches of pairs; the summed loss."""
    total = 0.0
    order = torch.from_numpy(rng.permutation(pairs.shape[1])).to(pairs.device)
    for batch in order.split(settings.batch_size):
        first, second = pairs[:, batch]
        optimizer.zero_grad(set_to_none=True)
        loss = hinge_loss(model(features[first]), model(features[second]), same[batch],
                          settings.margin)
        loss.backward()
        optimizer.step()
        total += loss.item() * len(batch)
    return total
