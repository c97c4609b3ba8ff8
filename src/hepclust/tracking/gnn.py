r"""The clustering GNN's graph neural network (Choma, NYU MS thesis 2019, Sec. 2.5 and 3.1.2).

Each of the K layers learns its own edge kernel, a two-layer MLP on the pair of vertex
features squashed by a sigmoid (Sec. 2.5.2), and convolves with the weighted adjacency
it gives (Sec. 2.5.3):

.. math::
    a_{ij} = \sigma\big(\Phi([v_i, v_j])\big), \qquad
    V' = \rho\big([A V, V] W^\mathsf{T} + b\big), \qquad (A V)_i = \sum_{j \to i} a_{ij} v_j.

The sum is not normalised: the thesis found a softmax over the neighbourhood to hurt, the
neighbourhood's size being useful information, so the default aggregation is the sum
(``aggr="mean"`` divides by the number of neighbours instead). Edges follow PyTorch
Geometric's convention: a column (j, i) of ``edge_index`` carries v_j into vertex i. The
input is the hit features concatenated with the metric-learning embedding (Eq. 2.18);
the sizes are those of Sec. 3.1.2: six layers, 192 hidden units, an output in R^8 and
kernels with 32 hidden units. The last layer is affine (no ReLU), so that the output
embedding may take any sign.

The loss is the hinge embedding loss of Sec. 2.5.4 over the pairs of an *evaluation
graph*, which may hold more pairs than the input graph (Sec. 2.5.5). The thesis's
Eq. (2.8) is garbled (y in {0, 1} and the same point twice); we use the usual hinge
embedding loss with Euclidean distances d: d for a true pair, max(0, margin - d) for a
false one, averaged over the pairs.
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from itertools import pairwise

import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from hepclust.tracking.refinement import (
    azimuth_sector,
    balanced_weights,
    end_products,
    mlp_on_edges,
)


@dataclass(frozen=True)
class Incoming:
    """Each vertex's incoming edges (columns (j, i) of an edge index, into i), grouped by
    vertex for `embedding_bag`, which sums each vertex's weighted neighbours without
    writing an (m, features) tensor of them (four times faster on a CPU than a gather and
    a scatter). Built once per graph and shared by a GNN's layers."""

    order: torch.Tensor  # the edges, sorted by target vertex (stable)
    source: torch.Tensor  # their source vertices
    offsets: torch.Tensor  # (n,) where each vertex's edges start in `order`
    count: torch.Tensor  # (n, 1): each vertex's number of incoming edges

    @classmethod
    def of(cls, edge_index: torch.Tensor, num_vertices: int) -> "Incoming":
        order = torch.argsort(edge_index[1], stable=True)
        count = torch.bincount(edge_index[1], minlength=num_vertices)
        return cls(order, edge_index[0, order], torch.cumsum(count, 0) - count,
                   count.unsqueeze(-1))

    def aggregate(self, x: torch.Tensor, weight: torch.Tensor, mean: bool) -> torch.Tensor:
        """sum (or mean, 0 without edges) over the edges j -> i of weight_ji x_j: (n, F)."""
        total = F.embedding_bag(self.source, x, self.offsets, mode="sum",
                                per_sample_weights=weight[self.order].to(x.dtype))
        return total / self.count.clamp(min=1).to(x.dtype) if mean else total


class EdgeWeightedConv(nn.Module):
    r"""One graph convolution with a learned edge kernel (Eqs. 2.21-2.23, without the ReLU):

    .. math::
        a_{ij} = \sigma(\Phi([v_i, v_j])), \qquad
        v'_i = W [\textstyle\bigoplus_{j \to i} a_{ij} v_j, \; v_i] + b,

    with :math:`\bigoplus` the sum (``aggr="add"``) or the mean (``aggr="mean"``) and
    :math:`\Phi` Linear(2 in, kernel_hidden) - ReLU - Linear(kernel_hidden, 1).

    Shapes: x (n, in_channels), edge_index (2, m) -> (n, out_channels).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_hidden: int = 32,
                 aggr: str = "add"):
        if aggr not in ("add", "mean"):
            raise ValueError(f"aggr must be 'add' or 'mean', not {aggr!r}")
        super().__init__()
        self.aggr = aggr
        self.kernel = nn.Sequential(nn.Linear(2 * in_channels, kernel_hidden), nn.ReLU(),
                                    nn.Linear(kernel_hidden, 1))
        self.linear = nn.Linear(2 * in_channels, out_channels)

    def reset_parameters(self) -> None:
        for module in (*self.kernel, self.linear):
            if isinstance(module, nn.Linear):
                module.reset_parameters()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        return self.with_logits(x, edge_index)[0]

    def with_logits(self, x: torch.Tensor, edge_index: torch.Tensor,
                    incoming: Incoming | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(v', the logit of a_ij of each edge (m,)): the kernel is the layer's edge
        classifier too. `incoming`: `edge_index`'s `Incoming`, if already built."""
        no_edge_inputs = x.new_zeros(edge_index.shape[1], 0)
        # = kernel_logits(x_i, x_j)
        logits = mlp_on_edges(self.kernel, edge_index[1], edge_index[0],
                              end_products(self.kernel[0], x), no_edge_inputs).squeeze(-1)
        if incoming is None:
            incoming = Incoming.of(edge_index, len(x))
        neighbours = incoming.aggregate(x, torch.sigmoid(logits), self.aggr == "mean")
        return self.linear(torch.cat([neighbours, x], dim=-1)), logits

    def kernel_logits(self, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        return self.kernel(torch.cat([x_i, x_j], dim=-1)).squeeze(-1)

    def edge_weight(self, x_i: torch.Tensor, x_j: torch.Tensor) -> torch.Tensor:
        """a_ij in (0, 1) of each edge j -> i, shape (m,)."""
        return torch.sigmoid(self.kernel_logits(x_i, x_j))


class ClusteringGNN(nn.Module):
    """K `EdgeWeightedConv` layers, ReLU between them, the last one linear (Sec. 3.1.2).

    Shapes: features (n, F) and, if given, the stage-1 embedding (n, E) with
    F (+ E) == in_channels; edge_index (2, m) -> (n, out_channels).
    """

    def __init__(self, in_channels: int, hidden: int = 192, out_channels: int = 8,
                 layers: int = 6, kernel_hidden: int = 32, aggr: str = "add"):
        super().__init__()
        if layers < 1:
            raise ValueError(f"need at least one layer, not {layers}")
        sizes = [in_channels, *[hidden] * (layers - 1), out_channels]
        self.convs = nn.ModuleList(EdgeWeightedConv(a, b, kernel_hidden, aggr)
                                   for a, b in pairwise(sizes))

    def forward(self, features: torch.Tensor, edge_index: torch.Tensor,
                embedding: torch.Tensor | None = None) -> torch.Tensor:
        return self.with_logits(features, edge_index, embedding)[0]

    def with_logits(self, features: torch.Tensor, edge_index: torch.Tensor,
                    embedding: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(output, the kernel logits of every layer, each (m,))."""
        x = features if embedding is None else torch.cat([features, embedding], dim=-1)
        incoming = Incoming.of(edge_index, len(x))
        logits = []
        for index, conv in enumerate(self.convs):
            x, layer_logits = conv.with_logits(x, edge_index, incoming)
            logits.append(layer_logits)
            if index < len(self.convs) - 1:
                x = torch.relu(x)
        return x, logits


def pair_logits(logits: torch.Tensor, pairs: int) -> torch.Tensor:
    """One logit per unordered pair from a layer's kernel logits over `message_edges`
    (each pair's two directions, the pairs then the flipped pairs): their mean, (pairs,)."""
    return 0.5 * (logits[:pairs] + logits[pairs:])


def edge_classification_loss(logits: Sequence[torch.Tensor], edge_index: torch.Tensor,
                             particle: torch.Tensor, noise_particle: int | None = 0
                             ) -> torch.Tensor:
    """The kernels as edge classifiers: the binary cross-entropy of each layer's a_ij
    against whether edge (2, m) joins two hits of one particle, true and false edges
    weighted to half each, averaged over the layers."""
    same = true_pairs(edge_index, particle, noise_particle)
    weights = balanced_weights(same)
    return torch.stack([F.binary_cross_entropy_with_logits(layer, same.float(), weights)
                        for layer in logits]).mean()



def true_pairs(edge_index: torch.Tensor, particle: torch.Tensor,
               noise_particle: int | None = 0) -> torch.Tensor:
    """Whether the two hits of each pair belong to the same particle; a pair involving a
    noise hit (particle id `noise_particle`) is never true. Shape (m,) bool."""
    first, second = particle[edge_index[0]], particle[edge_index[1]]
    same = first == second
    return same if noise_particle is None else same & (first != noise_particle)


def hinge_loss(embedding: torch.Tensor, edge_index: torch.Tensor, particle: torch.Tensor,
               margin: float = 1.0, noise_particle: int | None = 0) -> torch.Tensor:
    """The hinge embedding loss over the pairs of an evaluation graph (Secs. 2.5.4-2.5.5).

    A true pair (see `true_pairs`) costs its Euclidean distance d, a false pair
    max(0, margin - d); the loss is the mean over the pairs (0 for no pair).
    Shapes: embedding (n, D), edge_index (2, m), particle (n,) -> scalar.
    """
    if edge_index.shape[1] == 0:
        return embedding.sum() * 0.0
    difference = embedding[edge_index[0]] - embedding[edge_index[1]]
    # The epsilon keeps the gradient finite for pairs of identical embeddings.
    distance = (difference.square().sum(dim=-1) + 1e-12).sqrt()
    true = true_pairs(edge_index, particle, noise_particle)
    return torch.where(true, distance, (margin - distance).clamp(min=0.0)).mean()


@dataclass(frozen=True)
class GraphEvent:
    """One event as the GNN and the clustering stage see it.

    x: input features (n, F), the stage-1 embedding already concatenated;
    edge_index: the input graph (2, m); particle: true particle id of each hit (n,);
    eval_edge_index: the pairs of the loss (2, m'), the input graph if None;
    initial: an initial partition of the hits for the clustering stage (n,), e.g. the
    connected components of the graph; one cluster of all hits if None.
    """

    x: torch.Tensor
    edge_index: torch.Tensor
    particle: torch.Tensor
    eval_edge_index: torch.Tensor | None = None
    initial: torch.Tensor | None = None
    azimuth: torch.Tensor | None = None

    def to(self, device: torch.device | str) -> "GraphEvent":
        def move(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor.to(device)

        return GraphEvent(move(self.x), move(self.edge_index), move(self.particle),
                          move(self.eval_edge_index), move(self.initial), move(self.azimuth))

    def sectors(self, count: int) -> list["GraphEvent"]:
        """The event cut into `count` equal slices of the azimuth (of each edge's hit of
        lower index, so both directions of a pair fall together), all hits kept, each
        slice with its own input and loss edges; the whole event if `azimuth` is None
        or `count` is 1."""
        if self.azimuth is None or count <= 1:
            return [self]
        slot = azimuth_sector(self.azimuth, count)

        def part(edges: torch.Tensor, index: int) -> torch.Tensor:
            return edges[:, slot[torch.minimum(edges[0], edges[1])] == index]

        return [replace(self, edge_index=part(self.edge_index, index),
                        eval_edge_index=part(self.loss_edges, index))
                for index in range(count)]

    @property
    def loss_edges(self) -> torch.Tensor:
        return self.edge_index if self.eval_edge_index is None else self.eval_edge_index


def event_order(n_events: int, seed: int, epoch: int) -> list[int]:
    """The shuffled order of the events in one epoch; depends only on (seed, epoch)."""
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    return torch.randperm(n_events, generator=generator).tolist()


def train_gnn(gnn: ClusteringGNN, events: Sequence[GraphEvent], epochs: int,
              lr: float = 5e-4, margin: float = 1.0, seed: int = 0,
              device: torch.device | str = "cpu", edge_loss_weight: float = 0.0,
              sectors: int = 1) -> list[dict]:
    """Train `gnn` with Adam (Sec. 3.1.2's starting learning rate, kept constant) on the
    hinge loss plus `edge_loss_weight` times `edge_classification_loss` over the input
    edges, one step per azimuthal sector (`GraphEvent.sectors`) of each event; return
    one dict per epoch (mean losses, seconds)."""
    torch.manual_seed(seed)
    gnn.to(device).train()
    optimizer = torch.optim.Adam(gnn.parameters(), lr=lr)
    units = [part for event in events for part in event.sectors(sectors)
             if part.edge_index.shape[1]]
    history = []
    for epoch in range(epochs):
        began, totals = time.perf_counter(), {"loss": 0.0, "hinge_loss": 0.0, "edge_loss": 0.0}
        for index in tqdm(event_order(len(units), seed, epoch), leave=False, unit="sector",
                          desc=f"GNN epoch {epoch + 1}/{epochs}"):
            unit = units[index].to(device)
            optimizer.zero_grad(set_to_none=True)
            output, logits = gnn.with_logits(unit.x, unit.edge_index)
            hinge = hinge_loss(output, unit.loss_edges, unit.particle, margin)
            edge = (edge_classification_loss(logits, unit.edge_index, unit.particle)
                    if edge_loss_weight else output.new_zeros(()))
            loss = hinge + edge_loss_weight * edge
            loss.backward()
            optimizer.step()
            for name, value in (("loss", loss), ("hinge_loss", hinge), ("edge_loss", edge)):
                totals[name] += value.item()
        history.append({"epoch": epoch, **{k: v / max(len(units), 1) for k, v in totals.items()},
                        "seconds": time.perf_counter() - began, "events": len(events),
                        "steps": len(units)})
    return history
