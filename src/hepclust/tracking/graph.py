"""Graph construction in the learned embedding space and its quality (Choma's thesis,
sections 2.4.1 and 2.4.4).

Each point is joined to its neighbours: its k nearest, the points within distance r (the
epsilon-ball), or its k nearest among those within r. On the CPU a scipy kd-tree answers
the queries in O(n log n); tensors on another device (a GPU) are searched by brute force,
torch.cdist on chunks of rows: O(n^2) work, but fast on a GPU for events of up to some
10^5 hits, and with no copy to the host. The thesis adds directed edges i -> j;
we keep each unordered pair once (an edge of either direction), without self-loops, since
both the GNN and the metrics treat the graph as undirected. The ball holds the points at
distance <= r (the thesis's strict < differs only on a set of measure zero).

Purity is the share of the edges that are true pairs, recall the share of the event's
true pairs that are edges; see `hepclust.tracking.hit_features` for how true pairs count.
"""

from typing import Literal

import numpy as np
import torch
from scipy.spatial import cKDTree

from hepclust.tracking.hit_features import consecutive_pairs, count_true_pairs, same_particle

Backend = Literal["auto", "kdtree", "torch"]
CHUNK_ELEMENTS = 2**26  # distances held at once by the brute-force search (256 MB)


def neighbour_graph(points: torch.Tensor, k: int | None = None, r: float | None = None,
                    backend: Backend = "auto", chunk_size: int | None = None) -> torch.Tensor:
    """Undirected edges between each point (row of `points`, shape (N, D)) and its k
    nearest neighbours, its neighbours within r, or (both given) its k nearest within r.

    Returns an int64 (2, E) tensor on the device of `points`, i < j in each column, each
    pair once, sorted. ``backend="auto"`` takes the kd-tree on the CPU, torch elsewhere;
    torch compares `chunk_size` rows at a time with all points (by default as many rows as
    keep a chunk's distance matrix to `CHUNK_ELEMENTS`).
    """
    if k is None and r is None:
        raise ValueError("give k, r or both")
    if k is not None and k < 1:
        raise ValueError(f"k must be at least 1, not {k}")
    if r is not None and not r > 0:
        raise ValueError(f"r must be positive, not {r}")
    if backend == "auto":
        backend = "kdtree" if points.device.type == "cpu" else "torch"
    points = points.detach()
    if len(points) < 2:
        return torch.zeros((2, 0), dtype=torch.int64, device=points.device)
    if backend == "kdtree":
        first, second = _kdtree_neighbours(points.cpu().numpy(), k, r)
        first = torch.from_numpy(first).to(points.device)
        second = torch.from_numpy(second).to(points.device)
    elif backend == "torch":
        rows = chunk_size or max(1, CHUNK_ELEMENTS // len(points))
        first, second = _brute_force_neighbours(points, k, r, rows)
    else:
        raise ValueError(f"unknown backend {backend!r}")
    return undirected(torch.stack([first, second]), len(points))


def undirected(edge_index: torch.Tensor, num_nodes: int) -> torch.Tensor:
    """Each unordered pair of `edge_index` once as (i, j), i < j, sorted; self-loops dropped."""
    low = torch.minimum(edge_index[0], edge_index[1]).long()
    high = torch.maximum(edge_index[0], edge_index[1]).long()
    keys = torch.unique((low * num_nodes + high)[low != high])
    return torch.stack([keys // num_nodes, keys % num_nodes])


def _kdtree_neighbours(points: np.ndarray, k: int | None,
                       r: float | None) -> tuple[np.ndarray, np.ndarray]:
    n = len(points)
    tree = cKDTree(points)
    if k is None:
        pairs = tree.query_pairs(r, output_type="ndarray").astype(np.int64)
        return pairs[:, 0], pairs[:, 1]
    bound = np.inf if r is None else np.nextafter(r, np.inf)
    distance, neighbour = tree.query(points, k=min(k + 1, n), distance_upper_bound=bound)
    distance, neighbour = distance.reshape(n, -1), neighbour.reshape(n, -1)
    rows = np.arange(n)[:, None]
    valid = (neighbour != rows) & (neighbour < n)
    if r is not None:
        valid &= distance <= r
    valid &= np.cumsum(valid, axis=1) <= k  # a duplicate point may have displaced itself
    return np.broadcast_to(rows, neighbour.shape)[valid], neighbour[valid].astype(np.int64)


def _brute_force_neighbours(points: torch.Tensor, k: int | None, r: float | None,
                            chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    n = len(points)
    firsts, seconds = [], []
    for start in range(0, n, chunk_size):
        rows = torch.arange(start, min(start + chunk_size, n), device=points.device)
        distance = torch.cdist(points[rows], points,
                               compute_mode="donot_use_mm_for_euclid_dist")
        distance[torch.arange(len(rows), device=points.device), rows] = torch.inf
        if k is None:
            row, neighbour = torch.nonzero(distance <= r, as_tuple=True)
        else:
            nearest, neighbour = distance.topk(min(k, n - 1), dim=1, largest=False)
            keep = torch.isfinite(nearest) if r is None else nearest <= r
            row = torch.nonzero(keep, as_tuple=True)[0]
            neighbour = neighbour[keep]
        firsts.append(rows[row])
        seconds.append(neighbour)
    if not firsts:
        empty = torch.zeros(0, dtype=torch.int64, device=points.device)
        return empty, empty
    return torch.cat(firsts), torch.cat(seconds)


def edge_metrics(edge_index: torch.Tensor | np.ndarray,
                 particle_id: torch.Tensor | np.ndarray,
                 positions: torch.Tensor | np.ndarray | None = None) -> dict:
    """Size and quality of an event's graph: edges, true_edges, true_pairs (all the event's
    true pairs), purity = true_edges / edges and recall = true_edges / true_pairs (None
    where the denominator is 0). Each unordered pair counts once, whichever direction(s)
    it is given in. With the hits' `positions`, also consecutive_pairs (the pairs that
    follow each other along a particle, `consecutive_pairs`: what connects each track)
    and consecutive_edges, those of them that are edges."""
    particle_id = torch.as_tensor(particle_id).cpu()
    n = len(particle_id)
    edges = undirected(torch.as_tensor(edge_index).cpu(), n)
    true_edges = int(same_particle(particle_id, edges).sum())
    total_true = count_true_pairs(particle_id)
    n_edges = edges.shape[1]
    metrics = {"edges": n_edges, "true_edges": true_edges, "true_pairs": total_true,
               "purity": true_edges / n_edges if n_edges else None,
               "recall": true_edges / total_true if total_true else None}
    if positions is not None:
        wanted = undirected(consecutive_pairs(particle_id, torch.as_tensor(positions).cpu()), n)
        found = torch.isin(wanted[0] * n + wanted[1], edges[0] * n + edges[1])
        metrics.update(consecutive_pairs=wanted.shape[1], consecutive_edges=int(found.sum()))
    return metrics
