"""A cheap edge filter between the candidate graph and the refinement (Exa.TrkX's filter
stage): a small MLP judges each candidate edge from its two hits and their pair features
alone, and only the edges above a threshold go on to the interaction network, whose
message passing costs about 30 times as much per edge.

Candidate edges outnumber hits 8 to 1 at 10% density and 24 to 1 at 40%, so the filter's
depth goes where it is cheap: an encoder MLP runs once per hit (`hit_hidden`), and the
edge MLP's first layer is taken per hit too (`end_products`), leaving a narrow edge MLP
as the only work per candidate.

The threshold is set on the training events so that the filter keeps a chosen share of
their true edges (`efficiency`, e.g. 0.995); it is stored in the module with the
features' centring, so a saved filter is applied exactly as it was chosen. On the
default events it keeps about 40% of the candidate edges (the layer-pair windows have
already dropped two thirds) and 99.5% of the training events' true edges
(docs/tracking.md).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from hepclust.tracking.embedding import make_mlp
from hepclust.tracking.hit_features import TrackingEvent, same_particle
from hepclust.tracking.pair_features import (
    PAIR_FEATURES,
    coordinate_pair_features,
    hit_coordinates,
    oriented,
    oriented_by_radius,
    oriented_pair_features,
    pair_features,
)
from hepclust.tracking.refinement import balanced_weights, end_products, mlp_on_edges

EDGE_CHUNK = 32_768  # edges per chunk at inference, from their pair features to their logits:
# fewer chunks pay less per-call overhead, 32k measured best on 20% and 40% events


class EdgeFilter(nn.Module):
    """The logit that an edge joins two hits of one particle, from [inner hit encoding,
    outer hit encoding, pair features]: the hit and pair features each standardised by
    the training edges' statistics, and each hit's encoded by an MLP of `hit_hidden`
    widths (none: its standardised features themselves).
    Shapes: `edge_logits(event, edge_index (2, E))` -> (E,)."""

    def __init__(self, hit_dim: int, hidden: Sequence[int] = (64, 64),
                 hit_hidden: Sequence[int] = ()):
        super().__init__()
        self.hit_encoder = (make_mlp(hit_dim, hit_hidden, output_activation=nn.ReLU)
                            if hit_hidden else nn.Identity())
        width = hit_hidden[-1] if hit_hidden else hit_dim
        self.mlp = make_mlp(2 * width + len(PAIR_FEATURES), [*hidden, 1])
        self.register_buffer("hit_mean", torch.zeros(hit_dim))
        self.register_buffer("hit_scale", torch.ones(hit_dim))
        self.register_buffer("pair_mean", torch.zeros(len(PAIR_FEATURES)))
        self.register_buffer("pair_scale", torch.ones(len(PAIR_FEATURES)))
        self.register_buffer("threshold", torch.tensor(float("-inf")))

    def standardised_hits(self, features: torch.Tensor) -> torch.Tensor:
        return (features - self.hit_mean) / self.hit_scale

    def standardised_pairs(self, pairs: torch.Tensor) -> torch.Tensor:
        return (pairs - self.pair_mean) / self.pair_scale

    def standardised_edges(self, event: TrackingEvent, edge_index: torch.Tensor
                           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(inner hit of each edge, outer hit, standardised hit features (N, F),
        standardised pair features (E, 5))."""
        inner, outer = oriented(event.positions, edge_index)
        return (inner, outer, self.standardised_hits(event.features),
                self.standardised_pairs(oriented_pair_features(event.positions, inner, outer)))

    def row_logits(self, inner_hits: torch.Tensor, outer_hits: torch.Tensor,
                   pairs: torch.Tensor) -> torch.Tensor:
        """The logits (E,) of edges given as rows: their two hits' standardised features
        (E, F) each and their standardised pair features (E, 5)."""
        return self.mlp(torch.cat([self.hit_encoder(inner_hits), self.hit_encoder(outer_hits),
                                   pairs], dim=1)).squeeze(-1)

    def edge_logits(self, event: TrackingEvent, edge_index: torch.Tensor,
                    chunk: int = EDGE_CHUNK) -> torch.Tensor:
        coordinates, products = self._per_hit(event)
        inner, outer = oriented_by_radius(coordinates[3], edge_index)
        return torch.cat([self._chunk_logits(coordinates, products, i, o) for i, o in
                          zip(inner.split(chunk), outer.split(chunk), strict=True)]
                         ) if len(inner) else products.new_zeros(0)

    def _per_hit(self, event: TrackingEvent) -> tuple[torch.Tensor, torch.Tensor]:
        """The hits' `hit_coordinates` and their first-layer `end_products`."""
        return (hit_coordinates(event.positions),
                end_products(self.mlp[0], self.hit_encoder(self.standardised_hits(
                    event.features))))

    def _chunk_logits(self, coordinates: torch.Tensor, products: torch.Tensor,
                      inner: torch.Tensor, outer: torch.Tensor) -> torch.Tensor:
        """The logits of the edges inner -> outer, their pair features computed here:
        a chunk's per-edge tensors stay in the cache from the features to the logits."""
        pairs = self.standardised_pairs(coordinate_pair_features(coordinates, inner, outer))
        return mlp_on_edges(self.mlp, inner, outer, products, pairs).squeeze(-1)

    @torch.no_grad()
    def keep(self, event: TrackingEvent, edge_index: torch.Tensor,
             max_per_hit: int | None = None, max_gap: float | None = None,
             chunk: int = EDGE_CHUNK) -> torch.Tensor:
        """The edges of `edge_index` (2, E) above the stored threshold; of those, with
        `max_per_hit`, only the `max_per_hit` most probable of each hit toward hits
        farther out and toward hits farther in, and with `max_gap`, only those within
        `max_gap` of the hit's best logit on that side (an edge stays where either of its
        hits ranks it so). The cap makes the kept graph grow as the hits, not as the
        pairs of hits that the candidate windows hold; the gap drops the runners-up that
        a hit's best edge far outscores, which multiply with the density."""
        self.eval()
        coordinates, products = self._per_hit(event)
        # Chunk by chunk, only the edges above the threshold are kept: of the candidates
        # of a dense event, a quarter.
        kept, score, inner_kept, outer_kept = [], [], [], []
        for start in range(0, edge_index.shape[1], chunk):
            inner, outer = oriented_by_radius(coordinates[3],
                                              edge_index[:, start:start + chunk])
            logits = self._chunk_logits(coordinates, products, inner, outer)
            above = (logits > self.threshold).nonzero().squeeze(1)
            kept.append(above + start)
            score.append(at(logits, above))
            inner_kept.append(at(inner, above))
            outer_kept.append(at(outer, above))
        if not kept:
            return edge_index
        kept, score = torch.cat(kept), torch.cat(score)
        if max_per_hit is None and max_gap is None:
            return edge_index.index_select(1, kept)
        hits = len(event)
        ends, near = (torch.cat(inner_kept), torch.cat(outer_kept)), (None, None)
        if max_gap is not None:
            near = tuple(score >= at(per_key_max(score, hit, hits), hit) - max_gap
                         for hit in ends)
            # Ranks need only these: whatever outranks an edge near its hit's best is too.
            survivors = (near[0] | near[1]).nonzero().squeeze(1)
            kept, score = at(kept, survivors), at(score, survivors)
            ends = tuple(at(hit, survivors) for hit in ends)
            near = tuple(at(close, survivors) for close in near)
        chosen = torch.zeros(len(score), dtype=torch.bool, device=score.device)
        for hit, close in zip(ends, near, strict=True):
            # Ranked among the edges near their hit's best only: none of the others
            # outranks one of them.
            rows = (torch.arange(len(score), device=score.device) if close is None
                    else close.nonzero().squeeze(1))
            if max_per_hit is not None:
                rows = rows[top_per_key(at(score, rows), at(hit, rows), max_per_hit, hits)]
            chosen[rows] = True
        return edge_index.index_select(1, kept[chosen])


def at(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values[index] along the first dimension, by index_select: on a CPU several times
    faster than indexing with a tensor, on the millions of edges of a dense event."""
    return values.index_select(0, index)


def per_key_max(score: torch.Tensor, key: torch.Tensor, size: int) -> torch.Tensor:
    """The highest `score` (E,) of each key 0 <= key < `size` (-inf where none) -> (size,)."""
    return score.new_full((size,), float("-inf")).scatter_reduce_(0, key, score, "amax")


def top_per_key(score: torch.Tensor, key: torch.Tensor, k: int, size: int) -> torch.Tensor:
    """Which entries are among the `k` highest (finite) `score` of those sharing their `key`
    (0 <= key < size), ties going to the earlier entry: every entry of a key with at most
    `k`, then k passes of a per-key maximum over the rest, each linear in the entries,
    where sorting them cost about three times as much."""
    chosen = at(torch.bincount(key, minlength=size), key) <= k
    crowded = (~chosen).nonzero().squeeze(1)
    remaining, key = at(score, crowded), at(key, crowded)
    picked_here = torch.zeros(len(crowded), dtype=torch.bool, device=score.device)
    for _ in range(k):
        best = per_key_max(remaining, key, size)
        tied = ((remaining == at(best, key)) & ~picked_here).nonzero().squeeze(1)
        tied_key = at(key, tied)
        first = torch.full((size,), len(remaining), device=score.device).scatter_reduce_(
            0, tied_key, tied, "amin")
        picked = tied[at(first, tied_key) == tied]
        picked_here[picked] = True
        remaining[picked] = float("-inf")
    chosen[crowded[picked_here]] = True
    return chosen


@dataclass(frozen=True)
class _TrainingRows:
    """Every training edge as rows: the standardised features of all events' hits (N, F),
    each edge's inner and outer hit among them (E,), its standardised pair features."""

    hits: torch.Tensor
    inner: torch.Tensor
    outer: torch.Tensor
    pairs: torch.Tensor

    def logits(self, model: EdgeFilter, rows: torch.Tensor) -> torch.Tensor:
        return model.row_logits(self.hits[self.inner[rows]], self.hits[self.outer[rows]],
                                self.pairs[rows])


def _training_rows(model: EdgeFilter, events: Sequence[TrackingEvent],
                   candidates: Sequence[torch.Tensor]) -> _TrainingRows:
    hits, inner, outer, pairs, offset = [], [], [], [], 0
    for event, edges in zip(events, candidates, strict=True):
        event_inner, event_outer, event_hits, event_pairs = model.standardised_edges(event,
                                                                                     edges)
        hits.append(event_hits)
        inner.append(event_inner + offset)
        outer.append(event_outer + offset)
        pairs.append(event_pairs)
        offset += len(event)
    return _TrainingRows(torch.cat(hits), torch.cat(inner), torch.cat(outer), torch.cat(pairs))


def _fit_statistics(model: EdgeFilter, events: Sequence[TrackingEvent],
                    candidates: Sequence[torch.Tensor]) -> None:
    features = torch.cat([event.features for event in events])
    pairs = torch.cat([pair_features(event.positions, edges)
                       for event, edges in zip(events, candidates, strict=True)])
    for name, values in (("hit", features), ("pair", pairs)):
        getattr(model, f"{name}_mean").copy_(values.mean(dim=0))
        getattr(model, f"{name}_scale").copy_(values.std(dim=0).clamp(min=1e-6))


def train_edge_filter(events: Sequence[TrackingEvent], candidates: Sequence[torch.Tensor],
                      hidden: Sequence[int] = (64, 64), epochs: int = 5, lr: float = 0.002,
                      efficiency: float = 0.998, batch_size: int = 4096, seed: int = 0,
                      device: torch.device | str = "cpu", progress: bool = True,
                      hit_hidden: Sequence[int] = ()) -> tuple[EdgeFilter, list[dict]]:
    """Train the filter on every candidate edge (2, E) of `events`, true and false edges
    each carrying half of the loss, the learning rate halved every third of the epochs;
    then set its threshold to keep `efficiency` of the training events' true edges.
    Returns the model (evaluation mode, on `device`) and one history dict per epoch."""
    if not 0 < efficiency <= 1:
        raise ValueError(f"efficiency must be in (0, 1], not {efficiency}")
    device = torch.device(device)
    torch.manual_seed(seed)
    events = [event.to(device) for event in events]
    candidates = [edges.to(device) for edges in candidates]
    model = EdgeFilter(events[0].features.shape[1], hidden, hit_hidden).to(device)
    _fit_statistics(model, events, candidates)
    rows = _training_rows(model, events, candidates)
    same = torch.cat([same_particle(event.particle_id, edges)
                      for event, edges in zip(events, candidates, strict=True)])
    weights = balanced_weights(same)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    halving = max(epochs // 3, 1)
    history = []
    for epoch in range(epochs):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 ** (epoch // halving)
        generator = torch.Generator().manual_seed(seed * 1_000 + epoch)
        order = torch.randperm(len(same), generator=generator).to(device)
        began, total = time.perf_counter(), 0.0
        model.train()
        for batch in tqdm(order.split(batch_size), desc=f"filter epoch {epoch + 1}/{epochs}",
                          leave=False, disable=not progress):
            optimizer.zero_grad(set_to_none=True)
            loss = F.binary_cross_entropy_with_logits(rows.logits(model, batch),
                                                      same[batch].float(), weights[batch])
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        history.append({"epoch": epoch, "lr": optimizer.param_groups[0]["lr"],
                        "loss": total / max(len(same), 1), "edges": len(same),
                        "true_edges": int(same.sum()), "seconds": time.perf_counter() - began})
    model.eval()
    with torch.no_grad():
        logits = torch.cat([rows.logits(model, chunk)
                            for chunk in torch.arange(len(same), device=device).split(EDGE_CHUNK)])
    model.threshold.fill_(efficiency_threshold(logits[same], efficiency))
    kept = logits > model.threshold
    history[-1].update(threshold=float(model.threshold), kept_fraction=float(kept.float().mean()),
                       efficiency=float(kept[same].float().mean()) if bool(same.any()) else None)
    return model, history


def efficiency_threshold(true_logits: torch.Tensor, efficiency: float) -> float:
    """The logit above which `efficiency` of `true_logits` lie (-inf when all must)."""
    if efficiency >= 1 or not len(true_logits):
        return float("-inf")
    ordered = true_logits.sort().values
    return float(ordered[int(np.floor((1 - efficiency) * len(ordered) + 1e-9))]) - 1e-6
