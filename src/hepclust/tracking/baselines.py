r"""Reference track finders without learning, each giving a track id per hit: connected
components of a graph, DBSCAN on an embedding and DBSCAN on helix-unrolled hits (the
"DBSCAN" rows of Table 3.2 of Choma, NYU MS thesis 2019; the Kaggle TrackML public kernels).

**Helix unrolling.** A particle from the origin in a solenoidal field draws, in the
transverse plane, a circle through the origin. With curvature c = 1 / (2R) (signed by
the charge), a hit at radius r and azimuth phi sits at turning angle
alpha = arcsin(c r) from the particle's initial azimuth phi0 = phi - alpha, after an arc
length s = alpha / c (s = r for c = 0), and z / s = cot(theta) is constant along the
track. For each curvature c of a scan we compute, for every hit,

    (cos phi0, sin phi0, z_scale * z / s)

and run DBSCAN; a track's hits collapse to one point at its own curvature. Hits whose
c r exceeds 1 cannot belong to a particle of that curvature and are left out of that
step. The steps are merged as in the public Kaggle kernel ("helix unrolling" with a
scan over dz): a hit takes the cluster of a later step when that cluster is larger than
its current one but holds no more than `max_track_hits` hits. Hits left in no cluster
(DBSCAN noise) become one-hit tracks. Units: c in 1/mm for positions in mm; the default
scan reaches c = 1e-3 / mm, a 0.3 GeV particle in 2 T.
"""

from collections.abc import Sequence
from itertools import product

import numpy as np
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components as _components
from sklearn.cluster import DBSCAN

from hepclust.tracking.hit_features import as_numpy

CURVATURES = tuple(np.linspace(-1e-3, 1e-3, 41))  # 1/mm


def connected_components(edge_index: np.ndarray | torch.Tensor, num_nodes: int) -> np.ndarray:
    """The weakly connected component of each node of a graph (2, m), (num_nodes,) int64."""
    edges = as_numpy(edge_index).astype(np.int64).reshape(2, -1)
    adjacency = coo_matrix((np.ones(edges.shape[1]), (edges[0], edges[1])),
                           shape=(num_nodes, num_nodes))
    return _components(adjacency, directed=True, connection="weak")[1].astype(np.int64)


def singletons_for_noise(labels: np.ndarray) -> np.ndarray:
    """DBSCAN labels as consecutive track ids, each noise point (-1) a track of its own."""
    labels = np.asarray(labels, dtype=np.int64).copy()
    noise = labels < 0
    labels[noise] = labels.max(initial=-1) + 1 + np.arange(noise.sum())
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def dbscan_embedding(embedding: np.ndarray | torch.Tensor, eps: float = 0.1,
                     min_samples: int = 2) -> np.ndarray:
    """DBSCAN on embedded hits (n, D); noise hits become one-hit tracks. (n,) int64."""
    points = as_numpy(embedding).astype(np.float64)
    if len(points) == 0:
        return np.zeros(0, dtype=np.int64)
    return singletons_for_noise(DBSCAN(eps=eps, min_samples=min_samples).fit_predict(points))


def unrolled_features(x: np.ndarray, y: np.ndarray, z: np.ndarray, curvature: float,
                      z_scale: float = 1.0, z0: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(features (n, 3), valid (n,)) of the hits unrolled at one curvature (see the
    module's docstring), for tracks from z = `z0` on the beam line; invalid hits have
    |c r| > 1."""
    r, phi = np.hypot(x, y), np.arctan2(y, x)
    sine = curvature * r
    valid = np.abs(sine) <= 1.0
    alpha = np.arcsin(np.clip(sine, -1.0, 1.0))
    arc = r if curvature == 0 else np.divide(alpha, curvature)
    phi0 = phi - alpha
    slope = np.divide(z - z0, arc, out=np.zeros_like(z, dtype=np.float64), where=arc > 0)
    return np.column_stack([np.cos(phi0), np.sin(phi0), z_scale * slope]), valid


def dbscan_helix(x: np.ndarray, y: np.ndarray, z: np.ndarray, eps: float = 0.01,
                 min_samples: int = 3, curvatures: Sequence[float] = CURVATURES,
                 z_scale: float = 0.5, max_track_hits: int = 20,
                 z0s: Sequence[float] = (0.0,)) -> np.ndarray:
    """Tracks of one event's hits (positions in mm) by DBSCAN on helix-unrolled
    coordinates over a scan of curvatures (within a scan of track origins `z0s` on the
    beam line, mm), merged as the module's docstring tells. Returns (n,) int64 track ids."""
    x, y, z = (np.asarray(a, dtype=np.float64) for a in (x, y, z))
    labels = np.full(len(x), -1, dtype=np.int64)
    sizes = np.zeros(len(x), dtype=np.int64)  # the size of each hit's current cluster
    offset = 0
    for z0, curvature in product(z0s, curvatures):
        features, valid = unrolled_features(x, y, z, float(curvature), z_scale, float(z0))
        if valid.sum() < min_samples:
            continue
        step = np.full(len(x), -1, dtype=np.int64)
        step[valid] = DBSCAN(eps=eps, min_samples=min_samples).fit_predict(features[valid])
        found = step >= 0
        if not found.any():
            continue
        counts = np.bincount(step[found])
        step_sizes = np.zeros(len(x), dtype=np.int64)
        step_sizes[found] = counts[step[found]]
        better = found & (step_sizes > sizes) & (step_sizes <= max_track_hits)
        labels[better] = step[better] + offset
        offset += len(counts)
        # A cluster that lost hits to the new step shrinks.
        assigned = labels >= 0
        current = np.bincount(labels[assigned], minlength=offset)
        sizes = np.where(assigned, current[np.maximum(labels, 0)], 0)
    return singletons_for_noise(labels)


def dbscan_trackml_benchmark(x: np.ndarray, y: np.ndarray, z: np.ndarray, eps: float = 0.008,
                             min_samples: int = 1) -> np.ndarray:
    """The TrackML organisers' DBSCAN starting kernel (the thesis's "DBSCAN" benchmark
    row): each hit's direction from the origin, (x / d, y / d, z / r) with d the 3D and r
    the transverse distance, standardised over the event, clustered by DBSCAN. A straight
    track from the origin collapses to one point; curved and displaced ones do not.
    Returns (n,) int64 track ids."""
    x, y, z = (np.asarray(a, dtype=np.float64) for a in (x, y, z))
    if len(x) == 0:
        return np.zeros(0, dtype=np.int64)
    distance, radius = np.sqrt(x * x + y * y + z * z), np.hypot(x, y)
    features = np.column_stack([x / distance, y / distance, z / radius])
    spread = features.std(axis=0)
    features = (features - features.mean(axis=0)) / np.where(spread > 0, spread, 1.0)
    return singletons_for_noise(DBSCAN(eps=eps, min_samples=min_samples).fit_predict(features))
