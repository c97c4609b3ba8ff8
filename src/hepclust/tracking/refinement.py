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

`architecture="interaction"` replaces the MLP, which sees one edge at a time, by an
interaction network over the whole candidate graph (Battaglia et al., arXiv:1612.00222,
as Exa.TrkX classifies edges): an edge is judged with its neighbours, which tells a
track's continuation from a crossing track. It is trained on phi sectors of each
event's graph, one optimiser step a sector.
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
from hepclust.tracking.pair_features import PAIR_FEATURES, oriented, oriented_pair_features
from hepclust.ucluster.training import Schedule, reuse_freed_memory

log = logging.getLogger(__name__)
CPU_EDGE_CHUNK = 65_536  # edges per chunk of the interaction network's inference on CPU


class EdgeClassifier(nn.Module):
    """The logit of p_ij for each edge. Shapes: inputs (E, 2 F + 5) -> (E,)."""

    def __init__(self, hit_dim: int, hidden: Sequence[int] = (2048, 2048, 2048),
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.mlp = make_mlp(2 * hit_dim + len(PAIR_FEATURES), [*hidden, 1], activation)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return self.mlp(inputs).squeeze(-1)


class InteractionEdgeClassifier(nn.Module):
    """The logit of p_ij for each edge, from `steps` rounds of message passing over the
    graph. Hits and edges are encoded to `hidden` numbers (hits from their features,
    edges from `edge_inputs`), then each round updates every edge from itself and its
    two hits, and every hit from itself and the mean of its incoming and outgoing edges
    (edges point from the inner hit to the outer one), with residual connections:

        e_ij <- e_ij + phi_e([e_ij, h_i, h_j])
        h_i  <- h_i + phi_h([h_i, mean_{j -> i} e_ji, mean_{i -> j} e_ij])
        logit_ij = phi_out([e_ij, h_i, h_j])

    Shapes: `edge_logits(event, edge_index (2, E))` -> (E,)."""

    def __init__(self, hit_dim: int, hidden: int = 32, steps: int = 3,
                 activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.hit_encoder = make_mlp(hit_dim, [hidden, hidden], activation, activation)
        self.edge_encoder = make_mlp(2 * hit_dim + len(PAIR_FEATURES), [hidden, hidden],
                                     activation, activation)
        self.edge_updates = nn.ModuleList(
            make_mlp(3 * hidden, [hidden, hidden], activation, activation) for _ in range(steps))
        self.hit_updates = nn.ModuleList(
            make_mlp(3 * hidden, [hidden, hidden], activation, activation) for _ in range(steps))
        self.output = make_mlp(3 * hidden, [hidden, 1], activation)

    def edge_logits(self, event: TrackingEvent, edge_index: torch.Tensor,
                    chunk: int | None = None) -> torch.Tensor:
        """The logits (E,); each round's edge work runs `chunk` edges at a time (all at
        once if None), which changes nothing but memory traffic: on a CPU, chunks whose
        per-edge tensors stay in the cache make inference several times faster."""
        inner, outer = oriented(event.positions, edge_index.to(event.features.device))
        n = len(event.features)
        chunk = chunk or max(len(inner), 1)
        parts = list(zip(inner.split(chunk), outer.split(chunk), strict=True))
        hits = self.hit_encoder(event.features)
        pairs = oriented_pair_features(event.positions, inner, outer)
        products = end_products(self.edge_encoder[0], event.features)
        edges = [mlp_on_edges(self.edge_encoder, i, o, products, e)
                 for (i, o), e in zip(parts, pairs.split(chunk), strict=True)]
        ones = torch.ones(len(inner), 1, device=hits.device)
        count_in = torch.zeros(n, 1, device=hits.device).index_add_(0, outer, ones).clamp(min=1)
        count_out = torch.zeros(n, 1, device=hits.device).index_add_(0, inner, ones).clamp(min=1)
        for edge_update, hit_update in zip(self.edge_updates, self.hit_updates, strict=True):
            incoming, outgoing = torch.zeros_like(hits), torch.zeros_like(hits)
            products = end_products(edge_update[0], hits, edge_first=True)
            for index, (i, o) in enumerate(parts):
                edges[index] = edges[index] + mlp_on_edges(edge_update, i, o, products,
                                                           edges[index], edge_first=True)
                incoming.index_add_(0, o, edges[index])
                outgoing.index_add_(0, i, edges[index])
            hits = hits + hit_update(torch.cat([hits, incoming / count_in,
                                                outgoing / count_out], dim=1))
        products = end_products(self.output[0], hits, edge_first=True)
        return torch.cat([mlp_on_edges(self.output, i, o, products, e, edge_first=True).squeeze(-1)
                          for (i, o), e in zip(parts, edges, strict=True)])


def end_products(first: nn.Linear, hits: torch.Tensor, edge_first: bool = False) -> torch.Tensor:
    """Each hit's products with the inner-hit and the outer-hit weights of `first`, the
    first layer of an MLP on [hits[inner], hits[outer], edges] ([edges, hits[inner],
    hits[outer]] if `edge_first`): (2 N, width), row 2 h hit h's inner product plus the
    bias, row 2 h + 1 its outer product. Taken once per hit, for `mlp_on_edges`."""
    width = hits.shape[1]
    start = first.in_features - 2 * width if edge_first else 0
    weights = first.weight[:, start:start + 2 * width]
    inner_and_outer = torch.cat([weights[:, :width], weights[:, width:]])
    return torch.addmm(torch.cat([first.bias, torch.zeros_like(first.bias)]), hits,
                       inner_and_outer.T).reshape(2 * len(hits), -1)


def mlp_on_edges(mlp: nn.Sequential, inner: torch.Tensor, outer: torch.Tensor,
                 products: torch.Tensor, edges: torch.Tensor,
                 edge_first: bool = False) -> torch.Tensor:
    """`mlp` of [hits[inner], hits[outer], edges] per edge ([edges, hits[inner],
    hits[outer]] if `edge_first`) without building that (E, 2 H + D) input: each edge
    sums its two rows of the hits' first-layer `products` (`end_products`) in one
    `embedding_bag` (a bag of two rows: three times faster on a CPU than two gathers and
    two additions, which each write an (E, width) tensor) and the matrix product adds
    its own term in place."""
    first, own = mlp[0], edges.shape[1]
    weight_edge = first.weight[:, :own] if edge_first else first.weight[:, first.in_features - own:]
    ends = F.embedding_bag(torch.stack([2 * inner, 2 * outer + 1], dim=1), products, mode="sum")
    out = ends.addmm_(edges, weight_edge.T)
    for layer in mlp[1:]:
        # In place: neither product's gradient needs its output.
        out = out.relu_() if isinstance(layer, nn.ReLU) else layer(out)
    return out


def edge_classifier(architecture: str = "mlp", **arguments) -> nn.Module:
    """The refinement model: `EdgeClassifier` ("mlp") or `InteractionEdgeClassifier`."""
    if architecture == "mlp":
        return EdgeClassifier(**arguments)
    if architecture == "interaction":
        return InteractionEdgeClassifier(**arguments)
    raise ValueError(f"architecture must be 'mlp' or 'interaction', not {architecture!r}")


def edge_inputs(event: TrackingEvent, edge_index: torch.Tensor) -> torch.Tensor:
    """[inner hit features, outer hit features, pair features] of each edge: (E, 2 F + 5),
    on the device of `event`."""
    edge_index = edge_index.to(event.features.device)
    inner, outer = oriented(event.positions, edge_index)
    return torch.cat([event.features[inner], event.features[outer],
                      oriented_pair_features(event.positions, inner, outer)], dim=1)


@torch.no_grad()
def edge_probabilities(model: nn.Module, event: TrackingEvent, edge_index: torch.Tensor,
                       device: torch.device | str, batch_size: int = 65_536) -> torch.Tensor:
    """p_ij of each edge of `edge_index` (2, E), on `device`, the model in evaluation mode."""
    model.to(device).eval()
    if isinstance(model, InteractionEdgeClassifier):
        if not edge_index.shape[1]:
            return torch.zeros(0, device=device)
        chunk = CPU_EDGE_CHUNK if torch.device(device).type == "cpu" else edge_index.shape[1]
        return torch.sigmoid(model.edge_logits(event.to(device), edge_index.to(device), chunk))
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
    architecture: str = "mlp"
    hidden: tuple[int, ...] = (2048, 2048, 2048)  # mlp: its layers; interaction: (width,)
    steps: int = 3  # interaction: rounds of message passing
    sectors: int = 8  # interaction: phi sectors of an event, one optimiser step each
    epochs: int = 10
    batch_size: int = 8192  # mlp: edges per step
    schedule: Schedule = field(default_factory=lambda: Schedule(1e-3, 10, 1e-5))

    def model_arguments(self, hit_dim: int) -> dict:
        """The keyword arguments of `edge_classifier` for hits of `hit_dim` features."""
        if self.architecture == "interaction":
            return {"architecture": "interaction", "hit_dim": hit_dim,
                    "hidden": int(self.hidden[0]), "steps": self.steps}
        return {"architecture": "mlp", "hit_dim": hit_dim, "hidden": list(self.hidden)}


def azimuth_sector(azimuth: torch.Tensor, sectors: int) -> torch.Tensor:
    """The slice, of `sectors` equal slices of [-pi, pi], that holds each azimuth."""
    return ((azimuth + torch.pi) / (2 * torch.pi) * sectors).long().clamp(0, sectors - 1)


def phi_sectors(event: TrackingEvent, edge_index: torch.Tensor, sectors: int) -> list[torch.Tensor]:
    """The edges of `edge_index` split by the azimuth of their inner hit into `sectors`
    equal slices (each a (2, E_s) tensor; empty slices left out)."""
    inner, _ = oriented(event.positions, edge_index)
    slot = azimuth_sector(torch.atan2(event.positions[inner, 1], event.positions[inner, 0]),
                          sectors)
    return [edge_index[:, slot == s] for s in range(sectors) if bool((slot == s).any())]


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
                     progress: bool = True) -> tuple[nn.Module, list[dict]]:
    """Train phi' on the candidate edges (2, E) of each event (e.g. `embedding_graph`);
    returns the model (on `device`) and the history, one dict per epoch. The event and
    batch order of an epoch depend only on (seed, epoch)."""
    device = torch.device(device)
    reuse_freed_memory()
    torch.manual_seed(seed)
    model = edge_classifier(**settings.model_arguments(events[0].features.shape[1])).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.schedule.lr)
    if isinstance(model, InteractionEdgeClassifier):
        units, unit_name, steps = _sector_units(model, events, candidates, settings, device)
    else:
        units, unit_name, steps = _event_units(model, events, candidates, settings, device)
    history = []
    for epoch in range(settings.epochs):
        lr = settings.schedule.apply(optimizer, epoch)
        rng = np.random.default_rng([seed, epoch])
        began, total, edges, true_edges, count = time.perf_counter(), 0.0, 0, 0, 0
        model.train()
        for index in tqdm(rng.permutation(len(units)),
                          desc=f"refinement epoch {epoch + 1}/{settings.epochs}",
                          unit=unit_name, leave=False, disable=not progress):
            unit = units[index]
            for logits, same, weights in steps(unit, rng):
                optimizer.zero_grad(set_to_none=True)
                loss = F.binary_cross_entropy_with_logits(logits, same.float(), weights)
                loss.backward()
                optimizer.step()
                total += loss.item() * len(same)
                count += 1
            edges, true_edges = edges + len(unit.same), true_edges + int(unit.same.sum())
        history.append({"epoch": epoch, "lr": lr, "loss": total / max(edges, 1),
                        "edges": edges, "true_edges": true_edges, "steps": count,
                        "seconds": time.perf_counter() - began})
        log.info("refinement epoch %d/%d: loss %.4f, %.1f s", epoch + 1, settings.epochs,
                 history[-1]["loss"], history[-1]["seconds"])
    return model, history


@dataclass(frozen=True)
class _Unit:
    """What one shuffled unit of an epoch trains on: its edges' inputs (the MLP's rows, or
    the event and edge index of a phi sector), truth and loss weights."""

    inputs: object
    same: torch.Tensor
    weights: torch.Tensor


def _event_units(model: EdgeClassifier, events: Sequence[TrackingEvent],
                 candidates: Sequence[torch.Tensor], settings: RefinementSettings,
                 device: torch.device):
    """The MLP's units: one event each, split into shuffled batches of edges."""
    units = []
    for event, edge_index in zip(events, candidates, strict=True):
        event = event.to(device)
        same = same_particle(event.particle_id, edge_index.to(device))
        units.append(_Unit(edge_inputs(event, edge_index), same, balanced_weights(same)))

    def steps(unit: _Unit, rng: np.random.Generator):
        order = torch.from_numpy(rng.permutation(len(unit.same))).to(device)
        for batch in order.split(settings.batch_size):
            yield model(unit.inputs[batch]), unit.same[batch], unit.weights[batch]

    return units, "event", steps


def _sector_units(model: InteractionEdgeClassifier, events: Sequence[TrackingEvent],
                  candidates: Sequence[torch.Tensor], settings: RefinementSettings,
                  device: torch.device):
    """The interaction network's units: one phi sector of an event each, one step."""
    units = []
    for event, edge_index in zip(events, candidates, strict=True):
        event = event.to(device)
        for edges in phi_sectors(event, edge_index.to(device), settings.sectors):
            same = same_particle(event.particle_id, edges)
            units.append(_Unit((event, edges), same, balanced_weights(same)))

    def steps(unit: _Unit, rng: np.random.Generator):
        event, edges = unit.inputs
        yield model.edge_logits(event, edges), unit.same, unit.weights

    return units, "sector", steps
