r"""The Split and Stop modules of the clustering GNN's hierarchical stage, their losses and
the Stop module's labels (Choma, NYU MS thesis 2019, Secs. 2.6.3-2.6.5 and 3.1.3).

**Modules** (Sec. 2.6.3). Both are MLPs over the points of a cluster in which each layer
also sees its cluster's mean and (biased) variance of that layer's input (Eqs. 2.31-2.34):

.. math::
    h_j^{(t+1)} = \mathrm{ReLU}\big([h_j^{(t)}, \bar h^{(t)}, \hat h^{(t)}] W^{(t)}
    + \beta^{(t)}\big),

followed by a logit per point (Eqs. 2.35-2.36); four layers of 256 units (Sec. 3.1.3).
The statistics are scatter means over a cluster index, so that all the clusters of a
recursion depth go through in one batch. Split gives each point the probability of going
to the right child; Stop averages its points' probabilities into one per cluster
(Eq. 2.30).

**Split loss** (Sec. 2.6.4), corrected. For a cluster holding true particles j = 1..N,
with p~_j the mean probability of particle j's points (Eq. 2.40) and P the mean of the
p~_j (Eq. 2.41), and H(q) = -q log q - (1 - q) log(1 - q) (the printed Eqs. 2.42 and 2.44
have log q twice and use p_j for p~_j):

.. math::
    S_\mathrm{within} = \frac{1}{N} \sum_j H(\tilde p_j), \qquad
    S_\mathrm{between} = H(\bar P), \qquad
    l = S_\mathrm{within} - S_\mathrm{between}.

l is minimal (-log 2) when each particle's points all get p = 0 or all p = 1 (S_within
= 0) and half the particles go each way (P = 1/2, S_between = log 2). The printed Eq.
(2.45) has the opposite sign, which would reward splitting every particle; we minimise
S_within - S_between as the text intends. Every particle counts the same whatever its
size. Noise hits (particle id `noise_particle`) belong to no particle and are left out of
the loss. A cluster of a single particle has l = 0 identically; the loss of a batch is
the mean over its clusters holding at least two particles.

**Stop labels** (Sec. 2.6.5). A cluster's score is precision x recall against its
majority particle (the one with most hits in it, ties to the smallest id): N_t / N_c x
N_t / N_gt, N_gt counting that particle's hits in the whole event; 0 for clusters of
fewer than `min_hits` (3) hits or whose majority is noise. With weights w (a cluster's
number of hits by default, or its summed hit weights, so that w_p = w_l + w_r), the best
weighted score reachable from a cluster is computed from the leaves up,

.. math:: W'_p = \max(s_p w_p, \; W'_l + W'_r),

and a cluster's label is *stop* when s_p w_p >= W'_l + W'_r (ties stop; a leaf stops).
The printed Eq. (2.50) multiplies the children's recursive scores by their weights once
more; we read s' as a score, W' = s' w being its weighted value, which is what the
labels of Eq. (2.51) compare.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import torch
from torch import nn
from torch_geometric.utils import scatter

from hepclust.tracking.hit_features import as_numpy

ENTROPY_EPS = 1e-6


class SetLayer(nn.Module):
    """ReLU(Linear([h, mean_c(h), var_c(h)])) for points h in clusters c (Eq. 2.34).

    Shapes: x (n, in_features), cluster (n,) int64 in [0, num_clusters) -> (n, out_features).
    """

    def __init__(self, in_features: int, out_features: int):
        super().__init__()
        self.linear = nn.Linear(3 * in_features, out_features)

    def forward(self, x: torch.Tensor, cluster: torch.Tensor, num_clusters: int) -> torch.Tensor:
        mean = scatter(x, cluster, dim=0, dim_size=num_clusters, reduce="mean")[cluster]
        variance = scatter((x - mean).square(), cluster, dim=0, dim_size=num_clusters,
                           reduce="mean")[cluster]
        return torch.relu(self.linear(torch.cat([x, mean, variance], dim=-1)))


class SetNet(nn.Module):
    """`layers` SetLayers of `hidden` units and a linear logit per point (Eqs. 2.31-2.35).

    Shapes: x (n, in_features), cluster (n,) -> logits (n,).
    """

    def __init__(self, in_features: int, hidden: int = 256, layers: int = 4):
        super().__init__()
        sizes = [in_features, *[hidden] * layers]
        self.layers = nn.ModuleList(SetLayer(a, b) for a, b in pairwise(sizes))
        self.output = nn.Linear(sizes[-1], 1)

    def forward(self, x: torch.Tensor, cluster: torch.Tensor,
                num_clusters: int | None = None) -> torch.Tensor:
        num_clusters = _num_clusters(cluster, num_clusters)
        for layer in self.layers:
            x = layer(x, cluster, num_clusters)
        return self.output(x).squeeze(-1)


class Split(SetNet):
    """The probability that each point goes to the right child of its cluster (Eq. 2.36).

    Shapes: x (n, in_features), cluster (n,) -> (n,).
    """

    def forward(self, x: torch.Tensor, cluster: torch.Tensor,
                num_clusters: int | None = None) -> torch.Tensor:
        return torch.sigmoid(super().forward(x, cluster, num_clusters))


class Stop(SetNet):
    """The probability that each cluster stops dividing: its points' mean probability
    (Eq. 2.30). Shapes: x (n, in_features), cluster (n,) -> (num_clusters,)."""

    def forward(self, x: torch.Tensor, cluster: torch.Tensor,
                num_clusters: int | None = None) -> torch.Tensor:
        num_clusters = _num_clusters(cluster, num_clusters)
        votes = torch.sigmoid(super().forward(x, cluster, num_clusters))
        return scatter(votes, cluster, dim=0, dim_size=num_clusters, reduce="mean")


def _num_clusters(cluster: torch.Tensor, num_clusters: int | None) -> int:
    if num_clusters is not None:
        return num_clusters
    return int(cluster.max()) + 1 if cluster.numel() else 0


def binary_entropy(q: torch.Tensor) -> torch.Tensor:
    """H(q) = -q log q - (1 - q) log(1 - q) in nats, q clamped to [1e-6, 1 - 1e-6]."""
    q = q.clamp(ENTROPY_EPS, 1.0 - ENTROPY_EPS)
    return -q * q.log() - (1.0 - q) * (1.0 - q).log()


@dataclass(frozen=True)
class SplitEntropy:
    """The entropy terms of each cluster (index = cluster id): S_within, S_between and the
    number N of particles in it."""

    within: torch.Tensor
    between: torch.Tensor
    particles: torch.Tensor

    @property
    def several(self) -> torch.Tensor:
        """Which clusters hold at least two particles: the only ones with a loss."""
        return self.particles >= 2

    @property
    def losses(self) -> torch.Tensor:
        """The Split loss S_within - S_between of each cluster of `several`, shape (k',)."""
        return (self.within - self.between)[self.several]


@dataclass(frozen=True)
class ParticleGroups:
    """The (cluster, particle) groups of points: `of_point` gives each point's group (-1
    for noise), `cluster` each group's cluster, `size` each group's number of points."""

    of_point: torch.Tensor
    cluster: torch.Tensor
    size: torch.Tensor

    @property
    def count(self) -> int:
        return len(self.cluster)


def particle_groups(cluster: torch.Tensor, particle: torch.Tensor,
                    noise_particle: int | None = 0) -> ParticleGroups:
    """Group the points of each cluster by true particle, noise hits apart."""
    real = torch.ones_like(particle, dtype=torch.bool) if noise_particle is None \
        else particle != noise_particle
    _, particle_index = torch.unique(particle, return_inverse=True)
    n_particles = int(particle_index.max()) + 1 if particle.numel() else 1
    key = cluster.long() * n_particles + particle_index
    groups, group_of_point, size = torch.unique(key[real], return_inverse=True,
                                                return_counts=True)
    of_point = torch.full_like(key, -1)
    of_point[real] = group_of_point
    return ParticleGroups(of_point, groups // n_particles, size)


def split_entropy_terms(p: torch.Tensor, cluster: torch.Tensor, particle: torch.Tensor,
                        num_clusters: int | None = None,
                        noise_particle: int | None = 0) -> SplitEntropy:
    """S_within and S_between of each cluster (see the module's docstring).

    Shapes: p, cluster, particle (n,) -> three (num_clusters,); 0 for a cluster without
    particles.
    """
    num_clusters = _num_clusters(cluster, num_clusters)
    groups = particle_groups(cluster, particle, noise_particle)
    real = groups.of_point >= 0
    group_p = scatter(p[real], groups.of_point[real], dim=0, dim_size=groups.count,
                      reduce="mean")
    within = scatter(binary_entropy(group_p), groups.cluster, dim=0, dim_size=num_clusters,
                     reduce="mean")
    mean_p = scatter(group_p, groups.cluster, dim=0, dim_size=num_clusters, reduce="mean")
    count = torch.bincount(groups.cluster, minlength=num_clusters)
    between = torch.where(count > 0, binary_entropy(mean_p), torch.zeros_like(mean_p))
    return SplitEntropy(within, between, count)


@dataclass(frozen=True)
class RecursionTree:
    """The clusters of a divisive clustering, each parent before its children.

    Membership is stored flat: hit `entry_hit[k]` belongs to cluster `entry_node[k]`.
    children: (nodes, 2) int64, the left and right child of each cluster, -1 for a leaf;
    depth: (nodes,) int64, 0 for a root.
    """

    entry_node: np.ndarray
    entry_hit: np.ndarray
    children: np.ndarray
    depth: np.ndarray

    @classmethod
    def from_members(cls, members: Sequence[Sequence[int]],
                     children: Sequence[tuple[int, int] | None]) -> "RecursionTree":
        """Build a tree from the hits of each cluster and its (left, right) children or
        None; a child must come after its parent and the two must share out its hits."""
        if len(members) != len(children):
            raise ValueError(f"{len(members)} clusters but {len(children)} children entries")
        child_array = np.full((len(members), 2), -1, dtype=np.int64)
        depth = np.zeros(len(members), dtype=np.int64)
        for node, pair in enumerate(children):
            if pair is None:
                continue
            left, right = pair
            if not node < left < len(members) or not node < right < len(members):
                raise ValueError(f"children {pair} of cluster {node} must come after it")
            if sorted([*members[left], *members[right]]) != sorted(members[node]):
                raise ValueError(f"children {pair} do not share out the hits of cluster {node}")
            child_array[node] = pair
            depth[[left, right]] = depth[node] + 1
        sizes = [len(hits) for hits in members]
        return cls(np.repeat(np.arange(len(members)), sizes),
                   np.concatenate([np.asarray(h, dtype=np.int64) for h in members])
                   if members else np.zeros(0, dtype=np.int64),
                   child_array, depth)

    @property
    def num_nodes(self) -> int:
        return len(self.children)

    @property
    def sizes(self) -> np.ndarray:
        return np.bincount(self.entry_node, minlength=self.num_nodes)

    @property
    def leaves(self) -> np.ndarray:
        return self.children[:, 0] < 0

    def members(self, node: int) -> np.ndarray:
        return self.entry_hit[self.entry_node == node]


def cluster_scores(tree: RecursionTree, particle: np.ndarray | torch.Tensor,
                   min_hits: int = 3, noise_particle: int | None = 0) -> np.ndarray:
    """Precision x recall of each cluster against its majority particle (Eq. 2.52), 0 for
    fewer than `min_hits` hits or a noise majority; `particle` holds every hit of the event."""
    particle = as_numpy(particle)
    particles, hit_particle = np.unique(particle, return_inverse=True)
    n_particles = max(len(particles), 1)
    pair, pair_nhits = np.unique(tree.entry_node * n_particles + hit_particle[tree.entry_hit],
                                 return_counts=True)
    pair_node, pair_particle = np.divmod(pair, n_particles)
    order = np.lexsort((pair_particle, -pair_nhits, pair_node))
    major = order[np.flatnonzero(np.diff(pair_node[order], prepend=-1))]
    scores = np.zeros(tree.num_nodes)
    nodes, n_true = pair_node[major], pair_nhits[major]
    n_cluster = tree.sizes[nodes]
    n_particle = np.bincount(hit_particle, minlength=n_particles)[pair_particle[major]]
    scores[nodes] = (n_true / n_cluster) * (n_true / n_particle)
    low = (n_cluster < min_hits)
    if noise_particle is not None:
        low |= particles[pair_particle[major]] == noise_particle
    scores[nodes[low]] = 0.0
    return scores


def stop_labels(tree: RecursionTree, particle: np.ndarray | torch.Tensor,
                hit_weight: np.ndarray | torch.Tensor | None = None, min_hits: int = 3,
                noise_particle: int | None = 0) -> np.ndarray:
    """The Stop module's label of each cluster of `tree` (Eqs. 2.48-2.51): True (stop) when
    its weighted score is at least the best weighted score its descendants reach.

    Weights are the clusters' number of hits, or their summed `hit_weight` (n,).
    Shapes: particle (n,) over all hits of the event -> (nodes,) bool.
    """
    scores = cluster_scores(tree, particle, min_hits, noise_particle)
    per_hit = np.ones(len(tree.entry_hit)) if hit_weight is None \
        else as_numpy(hit_weight).astype(np.float64)[tree.entry_hit]
    weighted = scores * np.bincount(tree.entry_node, weights=per_hit, minlength=tree.num_nodes)
    best = weighted.copy()
    labels = np.ones(tree.num_nodes, dtype=bool)
    for node in range(tree.num_nodes - 1, -1, -1):
        left, right = tree.children[node]
        if left < 0:
            continue
        divided = best[left] + best[right]
        labels[node] = weighted[node] >= divided - 1e-9 * abs(divided)
        best[node] = max(weighted[node], divided)
    return labels
