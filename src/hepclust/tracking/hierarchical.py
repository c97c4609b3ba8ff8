"""Divisive clustering with the Split and Stop modules, and their training (Choma, NYU MS
thesis 2019, Secs. 2.6.2, 2.6.4-2.6.5, 3.1 and 3.1.3).

**Inference** (`hierarchical_clustering`, Sec. 2.6.2). The clusters start as an initial
partition (one cluster per event, or the connected components of the GNN's graph). At
each depth, every open cluster is first put to the Stop module (one forward pass for all
of them) and closed when it votes stop, when it holds fewer than `min_size` hits or at
`max_depth`; the others go through the Split module together (one forward pass per
depth) and each point goes right when its probability exceeds `threshold`. A split that
sends every point the same way would repeat forever: it closes its cluster instead
(counted as *degenerate*). The thesis runs Split on the root before asking Stop; we ask
Stop first everywhere, so that an initial cluster already holding a single track stays
whole. Each closed cluster becomes one track.

**Split training** (Sec. 2.6.4). The thesis forms the training clusters by applying the
Split module recursively (its Fig. 3-1) without saying how it copes with a poor module's
splits. `recursive_split_losses` starts from the initial partition and, at each depth,
scores every open cluster with the entropy loss, then divides it into children that are
*consistent with the truth* (teacher forcing, ``splits="truth"``): each particle's
points go together to the side of their mean probability, and if that leaves a cluster
one-sided, the half of its particles with the highest mean goes right. A cluster stays
open while it holds at least two particles, `min_size` hits and depth < `max_depth`.
With ``splits="model"`` the children are the module's own hard decisions instead (a
one-sided split closes the cluster). The loss of an event is the mean over all scored
clusters of all depths; one Adam step per event.

**Stop training** (Sec. 2.6.5). For each event, the (frozen) Split module grows the full
recursion tree, as at inference without Stop; every cluster of at least `min_size` hits
gets its label from `split_stop.stop_labels` and the Stop module is trained on them
with the binary cross-entropy.

**End to end** (Sec. 3.1). The GNN's output feeds the recursive split loss, whose
gradient reaches the GNN; the GNN's hinge loss may be added with a weight (0 by
default). Learning rates stay constant (the thesis decays them ten-fold on plateaus).
"""

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch_geometric.utils import scatter
from tqdm import tqdm

from hepclust.tracking.gnn import ClusteringGNN, GraphEvent, event_order, hinge_loss
from hepclust.tracking.split_stop import (
    RecursionTree,
    Split,
    Stop,
    particle_groups,
    split_entropy_terms,
    stop_labels,
)

Device = torch.device | str


@dataclass(frozen=True)
class Clustering:
    """The outcome of `hierarchical_clustering`.

    track_id: (n,) int64, consecutive from 0; tree: every cluster visited; depth: the
    deepest recursion depth reached; balance: min(left, right) / parent size of each
    split made; degenerate: the splits that sent every point one way (closed instead).
    """

    track_id: np.ndarray
    tree: RecursionTree
    depth: int
    balance: np.ndarray
    degenerate: int


def initial_clusters(initial: torch.Tensor | None, n: int, device: Device) -> torch.Tensor:
    """The initial partition as consecutive cluster ids (n,); one cluster if None."""
    if initial is None:
        return torch.zeros(n, dtype=torch.long, device=device)
    return torch.unique(initial.to(device), return_inverse=True)[1]


def _children(cluster: torch.Tensor, right: torch.Tensor, keep: torch.Tensor,
              hits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(hits, cluster) of the children of the kept clusters: the k-th kept cluster's
    points go to cluster 2k (left) or 2k + 1 (right)."""
    rank = torch.cumsum(keep.long(), dim=0) - 1
    inside = keep[cluster]
    return hits[inside], 2 * rank[cluster[inside]] + right[inside].long()


@torch.no_grad()
def hierarchical_clustering(features: torch.Tensor, split: Split, stop: Stop | None = None,
                            initial: torch.Tensor | None = None, threshold: float = 0.5,
                            stop_threshold: float = 0.5, min_size: int = 3,
                            max_depth: int = 32, device: Device = "cpu") -> Clustering:
    """Divide the hits (features (n, F)) into tracks, as the module's docstring tells;
    without `stop`, clusters divide until `min_size`, `max_depth` or a degenerate split."""
    x = features.to(device)
    n = len(x)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Clustering(empty, RecursionTree(empty, empty, np.zeros((0, 2), np.int64), empty),
                          depth=0, balance=np.zeros(0), degenerate=0)
    split.to(device).eval()
    if stop is not None:
        stop.to(device).eval()
    hits = torch.arange(n, device=device)
    cluster = initial_clusters(initial, n, device)
    node = torch.arange(int(cluster.max()) + 1, device=device)
    next_node = len(node)
    entry_node, entry_hit, depth_of, child_rows = [], [], [], []
    balance, degenerate = [], 0
    track_node = torch.full((n,), -1, dtype=torch.long, device=device)
    for depth in range(max_depth + 1):
        count = len(node)
        if count == 0:
            break
        entry_node.append(node[cluster].cpu())
        entry_hit.append(hits.cpu())
        depth_of.append(torch.full((count,), depth))
        size = torch.bincount(cluster, minlength=count)
        done = size < min_size
        if depth == max_depth:
            done[:] = True
        if stop is not None and not done.all():
            done |= stop(x[hits], cluster, count) >= stop_threshold
        right = torch.zeros(len(hits), dtype=torch.bool, device=device)
        if not done.all():
            going = ~done[cluster]
            _, going_cluster = torch.unique(cluster[going], return_inverse=True)
            right[going] = split(x[hits[going]], going_cluster) > threshold
            n_right = torch.bincount(cluster[right], minlength=count)
            one_sided = ~done & ((n_right == 0) | (n_right == size))
            degenerate += int(one_sided.sum())
            done |= one_sided
            made = ~done
            balance.append((torch.minimum(n_right, size - n_right)[made] / size[made]).cpu())
        closed = done[cluster]
        track_node[hits[closed]] = node[cluster[closed]]
        keep = ~done
        parents = node[keep]
        hits, cluster = _children(cluster, right, keep, hits)
        node = next_node + torch.arange(2 * len(parents), device=device)
        child_rows.append(torch.stack([parents, node[0::2], node[1::2]], dim=1).cpu())
        next_node += len(node)
    children = np.full((next_node, 2), -1, dtype=np.int64)
    rows = torch.cat(child_rows).numpy() if child_rows else np.zeros((0, 3), dtype=np.int64)
    children[rows[:, 0]] = rows[:, 1:]
    tree = RecursionTree(torch.cat(entry_node).numpy(), torch.cat(entry_hit).numpy(),
                         children, torch.cat(depth_of).numpy())
    track_id = np.unique(track_node.cpu().numpy(), return_inverse=True)[1].astype(np.int64)
    return Clustering(track_id=track_id, tree=tree,
                      depth=int(tree.depth.max()) if tree.num_nodes else 0,
                      balance=torch.cat(balance).numpy() if balance else np.zeros(0),
                      degenerate=degenerate)


def _truth_sides(p: torch.Tensor, cluster: torch.Tensor, particle: torch.Tensor,
                 threshold: float, noise_particle: int | None) -> torch.Tensor:
    """Which points go right when each particle's points go together (teacher forcing)."""
    groups = particle_groups(cluster, particle, noise_particle)
    real = groups.of_point >= 0
    group_p = scatter(p[real], groups.of_point[real], dim=0, dim_size=groups.count,
                      reduce="mean")
    group_right = group_p > threshold
    size = torch.bincount(groups.cluster)
    n_right = torch.bincount(groups.cluster[group_right], minlength=len(size))
    one_sided = (n_right == 0) | (n_right == size)
    # Rank each particle within its cluster by mean probability; the upper half goes right.
    order = torch.argsort(group_p, stable=True)
    order = order[torch.argsort(groups.cluster[order], stable=True)]
    first = torch.cumsum(size, dim=0) - size
    rank = torch.empty_like(order)
    rank[order] = torch.arange(len(order), device=p.device) - first[groups.cluster[order]]
    ranked_right = rank >= size[groups.cluster] // 2
    group_right = torch.where(one_sided[groups.cluster], ranked_right, group_right)
    right = p > threshold
    right[real] = group_right[groups.of_point[real]]
    return right


def recursive_split_losses(split: Split, features: torch.Tensor, particle: torch.Tensor,
                           initial: torch.Tensor | None = None,
                           splits: Literal["truth", "model"] = "truth",
                           threshold: float = 0.5, min_size: int = 3, max_depth: int = 32,
                           noise_particle: int | None = 0) -> torch.Tensor:
    """S_within - S_between of every training cluster of one event, all depths together
    (see the module's docstring). Shapes: features (n, F), particle (n,) -> (k,)."""
    if splits not in ("truth", "model"):
        raise ValueError(f"splits must be 'truth' or 'model', not {splits!r}")
    device = features.device
    hits = torch.arange(len(features), device=device)
    cluster = initial_clusters(initial, len(features), device)
    losses = []
    for _ in range(max_depth):
        count = int(cluster.max()) + 1 if len(cluster) else 0
        if count == 0:
            break
        p = split(features[hits], cluster, count)
        terms = split_entropy_terms(p, cluster, particle[hits], count, noise_particle)
        several = terms.several
        losses.append(terms.losses)
        with torch.no_grad():
            right = (_truth_sides(p.detach(), cluster, particle[hits], threshold,
                                  noise_particle)
                     if splits == "truth" else p.detach() > threshold)
            size = torch.bincount(cluster, minlength=count)
            n_right = torch.bincount(cluster[right], minlength=count)
            keep = several & (size >= min_size) & (n_right > 0) & (n_right < size)
            hits, cluster = _children(cluster, right, keep, hits)
    return torch.cat(losses) if losses else features.new_zeros(0)


@dataclass(frozen=True)
class ClusterEvent:
    """One event as the Split and Stop modules see it: features (n, F) (the GNN's
    output), true particle ids (n,), an initial partition (n,) or None for one cluster,
    and hit weights (n,) for the Stop labels or None for hit counts."""

    features: torch.Tensor
    particle: torch.Tensor
    initial: torch.Tensor | None = None
    hit_weight: torch.Tensor | None = None


def _mean(losses: torch.Tensor) -> torch.Tensor:
    return losses.mean() if losses.numel() else losses.sum()


def _optimise(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    optimizer.zero_grad(set_to_none=True)
    if loss.requires_grad:
        loss.backward()
        optimizer.step()


def train_split(split: Split, events: Sequence[ClusterEvent], epochs: int, lr: float = 0.01,
                seed: int = 0, splits: Literal["truth", "model"] = "truth",
                threshold: float = 0.5, min_size: int = 3, max_depth: int = 32,
                noise_particle: int | None = 0, device: Device = "cpu") -> list[dict]:
    """Train the Split module on the recursive entropy loss with Adam (Sec. 3.1.3's
    learning rate), one step per event; return one dict per epoch."""
    torch.manual_seed(seed)
    split.to(device).train()
    optimizer = torch.optim.Adam(split.parameters(), lr=lr)
    history = []
    for epoch in range(epochs):
        began, total, clusters = time.perf_counter(), 0.0, 0
        for index in tqdm(event_order(len(events), seed, epoch), leave=False, unit="event",
                          desc=f"Split epoch {epoch + 1}/{epochs}"):
            event = events[index]
            losses = recursive_split_losses(
                split, event.features.to(device), event.particle.to(device),
                None if event.initial is None else event.initial.to(device), splits,
                threshold, min_size, max_depth, noise_particle)
            loss = _mean(losses)
            _optimise(loss, optimizer)
            total, clusters = total + loss.item(), clusters + losses.numel()
        history.append({"epoch": epoch, "loss": total / max(len(events), 1),
                        "clusters": clusters, "seconds": time.perf_counter() - began})
    return history


def train_stop(stop: Stop, split: Split, events: Sequence[ClusterEvent], epochs: int,
               lr: float = 1e-3, seed: int = 0, threshold: float = 0.5, min_size: int = 3,
               max_depth: int = 32, min_hits: int = 3, noise_particle: int | None = 0,
               device: Device = "cpu") -> list[dict]:
    """Train the Stop module on the labels of the trees the frozen `split` grows (Sec.
    2.6.5), binary cross-entropy with Adam (Sec. 3.1.3's learning rate), one step per
    event; return one dict per epoch (loss, accuracy, fraction of stop labels)."""
    torch.manual_seed(seed)
    trees = []
    for event in events:
        tree = hierarchical_clustering(event.features, split, None, event.initial, threshold,
                                       min_size=min_size, max_depth=max_depth,
                                       device=device).tree
        labels = stop_labels(tree, event.particle, event.hit_weight, min_hits, noise_particle)
        asked = tree.sizes >= min_size
        trees.append((tree, torch.as_tensor(labels, dtype=torch.float32, device=device),
                      torch.as_tensor(asked, device=device)))
    stop.to(device).train()
    optimizer = torch.optim.Adam(stop.parameters(), lr=lr)
    history = []
    for epoch in range(epochs):
        began, total, correct, stops, nodes = time.perf_counter(), 0.0, 0, 0, 0
        for index in tqdm(event_order(len(events), seed, epoch), leave=False, unit="event",
                          desc=f"Stop epoch {epoch + 1}/{epochs}"):
            tree, labels, asked = trees[index]
            features = events[index].features.to(device)
            p = stop(features[torch.as_tensor(tree.entry_hit, device=device)],
                     torch.as_tensor(tree.entry_node, device=device), tree.num_nodes)[asked]
            target = labels[asked]
            loss = F.binary_cross_entropy(p.clamp(1e-6, 1 - 1e-6), target) if p.numel() \
                else p.sum()
            _optimise(loss, optimizer)
            total += loss.item()
            correct += int(((p >= 0.5) == target.bool()).sum())
            stops, nodes = stops + int(target.sum()), nodes + len(target)
        history.append({"epoch": epoch, "loss": total / max(len(events), 1),
                        "accuracy": correct / max(nodes, 1),
                        "stop_fraction": stops / max(nodes, 1), "clusters": nodes,
                        "seconds": time.perf_counter() - began})
    return history


def train_end_to_end(gnn: ClusteringGNN, split: Split, events: Sequence[GraphEvent],
                     epochs: int, lr: float = 5e-4, seed: int = 0, hinge_weight: float = 0.0,
                     margin: float = 1.0, splits: Literal["truth", "model"] = "truth",
                     threshold: float = 0.5, min_size: int = 3, max_depth: int = 32,
                     noise_particle: int | None = 0, device: Device = "cpu") -> list[dict]:
    """Fine-tune the GNN and the Split module together (Sec. 3.1): the recursive split
    loss on the GNN's output, plus `hinge_weight` times the GNN's hinge loss, back-
    propagated through both, with Adam, one step per event; one dict per epoch."""
    torch.manual_seed(seed)
    gnn.to(device).train()
    split.to(device).train()
    parameters: list[nn.Parameter] = [*gnn.parameters(), *split.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=lr)
    history = []
    for epoch in range(epochs):
        began, totals = time.perf_counter(), {"loss": 0.0, "split_loss": 0.0, "hinge_loss": 0.0}
        for index in tqdm(event_order(len(events), seed, epoch), leave=False, unit="event",
                          desc=f"end-to-end epoch {epoch + 1}/{epochs}"):
            event = events[index].to(device)
            embedding = gnn(event.x, event.edge_index)
            split_loss = _mean(recursive_split_losses(
                split, embedding, event.particle, event.initial, splits, threshold,
                min_size, max_depth, noise_particle))
            hinge = hinge_loss(embedding, event.loss_edges, event.particle, margin,
                               noise_particle) if hinge_weight else embedding.new_zeros(())
            loss = split_loss + hinge_weight * hinge
            _optimise(loss, optimizer)
            for name, value in (("loss", loss), ("split_loss", split_loss),
                                ("hinge_loss", hinge)):
                totals[name] += value.item()
        history.append({"epoch": epoch, **{k: v / max(len(events), 1) for k, v in totals.items()},
                        "seconds": time.perf_counter() - began})
    return history
