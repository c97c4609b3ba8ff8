"""Track building by a union of edges under a one-hit-per-layer rule.

The refined edges are taken in decreasing probability, and each joins the clusters of
its two hits unless the joined cluster would hold two hits on one detector layer farther
apart than `same_layer_mm`. A particle crosses a layer once, or twice a few millimetres
apart where modules overlap (on the simulated events the same-layer hits of one particle
lie within 4.5 mm at the median and 22 mm at the 99th percentile), so such a pair of
hits is two tracks that a fake edge would merge. Where a track crosses a layer at a
shallow angle (high |eta| in the barrel), its two hits in overlapping modules lie
farther apart, along its direction, which for a track from the beam line is close to
the line of sight from the origin: with `aligned_mm` > 0, two hits of one layer also
join when they lie within `aligned_mm` of each other and within `aligned_across_mm` of
the line from the origin through their midpoint (on three simulated events this took
the score from 0.807-0.824 to 0.828-0.852, docs/tracking.md).

Unlike cutting components at a stricter threshold, the rule keeps a track's weak true
edges wherever they join no second track: on the simulated events the connected
components lose most of their score by splitting tracks into fragments, not by merging
them (docs/tracking.md).

With `best_links_first`, an edge that is the most probable of both its hits toward the
other hit's layer goes before all others (in decreasing probability among themselves): a
track continues from a hit to one hit of the next layer, so such mutual best links are
the surest, and a fake edge of high probability that loses to a true one at either end
waits until the tracks it would join are built and refuse it.

With `one_link_per_side`, a track is built as a chain: each hit takes at most one join
toward a hit farther out (in transverse radius) and one toward a hit farther in, while
edges between hits of one layer (module overlaps) join freely. A hit that already
continues outward then refuses a second outward edge, the usual shape of a fake edge
that would pull it into a neighbouring track; its track's skipped-layer edges need no
join, since the chain already holds the hits they connect. On three spare simulated
events this gained 0.005-0.013 in score over the plain union (docs/tracking.md).
"""

import gc
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from hepclust.tracking.hit_features import as_numpy
from hepclust.tracking.pair_features import oriented


@contextmanager
def garbage_collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off inside. The union allocates a dict and a
    list per hit, which sets off the collector's full passes, and in a process that has
    imported torch and pandas a full pass walks the 400,000 objects they made (0.3 s, a third
    of some events' reconstruction). Objects outside reference cycles are still freed."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@garbage_collection_paused()
def layer_union(edge_index: torch.Tensor | np.ndarray, probability: torch.Tensor | np.ndarray,
                layers: torch.Tensor | np.ndarray, positions: torch.Tensor | np.ndarray,
                same_layer_mm: float, best_links_first: bool = False,
                one_link_per_side: bool = False, aligned_mm: float = 0.0,
                aligned_across_mm: float = 5.0) -> np.ndarray:
    """Cluster labels (N,) int64 from 0 of hits on `layers` (N,) at `positions` (N, 3) in
    mm, from the edges `edge_index` (2, E) joined in decreasing `probability` (E,) (the
    mutual best links first if `best_links_first`) under the one-hit-per-layer rule (and
    one join per hit and side if `one_link_per_side`; aligned pairs of one layer join as
    the module says); hits no edge joins stay alone."""
    inner, outer = oriented(torch.as_tensor(positions), torch.as_tensor(edge_index))
    edges, p = np.stack([inner.numpy(), outer.numpy()]), as_numpy(probability)
    layers = as_numpy(layers)
    rule = SameLayerRule(positions, same_layer_mm, aligned_mm, aligned_across_mm)
    num_hits = len(layers)
    # Whether each hit has joined a hit farther out / farther in (one_link_per_side).
    linked_out, linked_in = [False] * num_hits, [False] * num_hits
    layer_of = layers.tolist()
    clusters = LayerClusters(np.arange(num_hits), layers)  # each hit alone
    first_tier = mutual_best_links(edges, p, layers) if best_links_first else np.ones(len(p), bool)
    order = np.lexsort((-p, ~first_tier))
    join = clusters.join
    for first, second in zip(edges[0, order].tolist(), edges[1, order].tolist(), strict=True):
        across = one_link_per_side and layer_of[first] != layer_of[second]
        if across and (linked_out[first] or linked_in[second]):
            continue  # before the roots: most edges end here, and it needs none
        if join(first, second, rule) and across:
            linked_out[first] = linked_in[second] = True
    return clusters.labels()


class LayerClusters:
    """Clusters of hits that grow by joining, each remembering its hits per detector
    layer (a union-find over the starting clusters)."""

    def __init__(self, labels: np.ndarray, layers: np.ndarray,
                 joining: np.ndarray | None = None):
        """From the starting cluster `labels` (N,) int64 from 0 of hits on `layers` (N,);
        only the clusters `joining` (bool, one per cluster; all if None) may join."""
        self.label = labels.tolist()
        count = int(labels.max()) + 1 if len(labels) else 0
        self.parent = list(range(count))
        self.size = np.bincount(labels, minlength=count).tolist()
        if joining is None and count == len(labels):  # one hit each, as the layer union starts
            layer_of = layers.tolist()
            self.members: list[dict | None] = [{layer_of[hit]: [hit]}
                                               for hit in np.argsort(labels).tolist()]
            return
        self.members = [{} for _ in range(count)]  # at roots only
        hits = np.arange(len(labels)) if joining is None else np.flatnonzero(joining[labels])
        for hit, label, layer in zip(hits.tolist(), labels[hits].tolist(), layers[hits].tolist(),
                                     strict=True):
            self.members[label].setdefault(layer, []).append(hit)

    def join(self, hit: int, other: int, rule: "SameLayerRule",
             most_hits: int | None = None) -> bool:
        """Join the clusters of two hits unless `rule` says they cannot be one track or
        (with `most_hits`) the smaller holds more hits than that; whether they were
        joined (False too where they already were one)."""
        parent, size, members = self.parent, self.size, self.members
        a, b = self.label[hit], self.label[other]
        while parent[a] != a:  # the roots, inline: this runs once per candidate edge
            parent[a] = a = parent[parent[a]]
        while parent[b] != b:
            parent[b] = b = parent[parent[b]]
        if a == b:
            return False
        if size[a] < size[b]:
            a, b = b, a
        if most_hits is not None and size[b] > most_hits:
            return False
        if not rule.compatible(members[a], members[b]):
            return False
        parent[b] = a
        size[a] += size[b]
        for layer, hits in members[b].items():
            members[a].setdefault(layer, []).extend(hits)
        members[b] = None
        return True

    def labels(self) -> np.ndarray:
        """Each hit's cluster (N,) int64, consecutive from 0."""
        roots = np.asarray(self.parent, dtype=np.int64)
        while not np.array_equal(roots, roots[roots]):
            roots = roots[roots]
        return np.unique(roots[self.label], return_inverse=True)[1].astype(np.int64)


class SameLayerRule:
    """Whether two hits of one detector layer can belong to one track: they lie within
    `same_layer_mm`, or within `aligned_mm` and `aligned_across_mm` of the line of sight
    from the origin through their midpoint (module overlaps crossed at a shallow angle)."""

    def __init__(self, positions: torch.Tensor | np.ndarray, same_layer_mm: float,
                 aligned_mm: float = 0.0, aligned_across_mm: float = 5.0):
        if same_layer_mm < 0:
            raise ValueError(f"same_layer_mm must be >= 0, not {same_layer_mm}")
        # Python floats: numpy is slow on a handful of hits. Three flat lists, not a list
        # per hit, give the cyclic garbage collector nothing to walk.
        self.x, self.y, self.z = as_numpy(positions).astype(np.float64).T.tolist()
        self.limit, self.aligned_limit = same_layer_mm ** 2, aligned_mm ** 2
        self.across_limit = aligned_across_mm ** 2

    def one_track(self, hit: int, other: int) -> bool:
        x, y, z = self.x, self.y, self.z
        dx, dy, dz = x[hit] - x[other], y[hit] - y[other], z[hit] - z[other]
        distance = dx * dx + dy * dy + dz * dz
        if distance <= self.limit:
            return True
        if distance > self.aligned_limit:
            return False
        # toward their midpoint from the origin
        sx, sy, sz = x[hit] + x[other], y[hit] + y[other], z[hit] + z[other]
        along = dx * sx + dy * sy + dz * sz
        return distance - along * along / (sx * sx + sy * sy + sz * sz) <= self.across_limit

    def compatible(self, big: dict, small: dict) -> bool:
        """Whether two clusters, each {layer: [hits]}, can be one track."""
        one_track = self.one_track
        return all(one_track(hit, other) for layer, hits in small.items()
                   for other in big.get(layer, ()) for hit in hits)


def mutual_best_links(edges: np.ndarray, probability: np.ndarray, layers: np.ndarray) -> np.ndarray:
    """Whether each edge (2, E) has the highest `probability` (E,) of the edges between
    its first hit and the second hit's layer and of those between its second hit and the
    first hit's layer (ties: the earlier edge)."""
    best = np.ones(edges.shape[1], dtype=bool)
    span = int(layers.max()) + 1 if len(layers) else 1
    for here, there in (edges, edges[::-1]):
        wins = np.zeros(edges.shape[1], dtype=bool)
        wins[most_probable_per_key(here.astype(np.int64) * span + layers[there],
                                   probability)] = True
        best &= wins
    return best


def most_probable_per_key(key: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The index of the most probable of the edges that share each distinct `key` (E,)
    (ties: the earlier edge), one per key in increasing key order."""
    order = np.lexsort((-probability, key))
    first = np.ones(len(order), dtype=bool)
    first[1:] = key[order][1:] != key[order][:-1]
    return order[first]
