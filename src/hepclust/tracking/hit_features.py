"""Each hit's input features and the truth the tracking GNN learns from (Choma's thesis,
sections 1.1.1 and 2.4.1).

The thesis feeds the embedding each hit's position, detector identifier and cell
features. We give, scaled to O(1): x, y, z and the cylindrical radius r in metres, the
azimuth phi / pi, the pseudorapidity of the hit's position seen from the origin,
asinh(z / r), volume_id and layer_id over 10, and the shape of the hit's pixel or strip
cluster (`hepclust.io.trackml_cells`): log(1 + cells), log(1 + charge) and the two local
incidence angles it implies, in radians (zeros where an event has no cells).

A *true pair* is two distinct hits of the same particle; noise (particle_id 0) belongs to
no particle. Pairs are unordered: a particle with n hits has n (n - 1) / 2 of them. The
thesis's count of true edges, N_t = sum |c|^2 (eq. 2.3), counts ordered pairs and each hit
with itself; our graphs are undirected without self-loops, so recall is counted against
unordered pairs of distinct hits.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hepclust.errors import InputError
from hepclust.tracking.tables import Table, columns

HIT_FEATURES = ("x", "y", "z", "r", "phi", "eta", "volume", "layer",
                "log_cells", "log_charge", "theta_u", "theta_v")
CELL_COLUMNS = ("cell_count", "cell_value", "cell_theta_u", "cell_theta_v")
LENGTH_SCALE = 1000.0  # mm: positions in metres
ID_SCALE = 10.0  # TrackML's volume ids run to 18, layer ids to 14


def hit_features(x: np.ndarray, y: np.ndarray, z: np.ndarray, volume_id: np.ndarray,
                 layer_id: np.ndarray, cells: np.ndarray | None = None) -> torch.Tensor:
    """The features `HIT_FEATURES` of hits at (x, y, z) in mm, with their `cells` (N, 4)
    columns `CELL_COLUMNS` (None: no cells), as a float32 (N, 12) tensor."""
    x, y, z = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    r = np.hypot(x, y)
    eta = np.arcsinh(z / np.maximum(r, 1e-9))
    phi = np.arctan2(y, x) / np.pi
    ids = [np.asarray(v, dtype=np.float64) / ID_SCALE for v in (volume_id, layer_id)]
    cells = np.zeros((len(x), 4)) if cells is None else np.asarray(cells, dtype=np.float64)
    shape = [np.log1p(cells[:, 0]), np.log1p(cells[:, 1]), cells[:, 2], cells[:, 3]]
    stacked = np.stack([x / LENGTH_SCALE, y / LENGTH_SCALE, z / LENGTH_SCALE, r / LENGTH_SCALE,
                        phi, eta, *ids, *shape], axis=1)
    return torch.from_numpy(stacked.astype(np.float32))


def detector_layers(features: torch.Tensor) -> torch.Tensor:
    """Each hit's layer key volume_id * 100 + layer_id (int64), read back from its
    `HIT_FEATURES` (N, F), where both ids are stored divided by `ID_SCALE`."""
    ids = torch.round(features[:, [HIT_FEATURES.index("volume"), HIT_FEATURES.index("layer")]]
                      * ID_SCALE).long()
    return ids[:, 0] * 100 + ids[:, 1]


@dataclass(frozen=True)
class TrackingEvent:
    """One event's hits as tensors: features (N, F) float32, positions (N, 3) float32 in
    mm, particle_id (N,) int64 (0 for noise)."""

    features: torch.Tensor
    positions: torch.Tensor
    particle_id: torch.Tensor

    @classmethod
    def from_hits(cls, hits: Table, source: str | Path = "hits") -> "TrackingEvent":
        """The event of a hits table (pyarrow or pandas) holding one event only."""
        names = hits.column_names if hasattr(hits, "column_names") else list(hits.columns)
        if "event_id" in names:
            (event_id,) = columns(hits, ["event_id"], source)
            if len(np.unique(event_id)) > 1:
                raise InputError(source, f"holds {len(np.unique(event_id))} events, expected one")
        x, y, z, volume_id, layer_id, particle_id = columns(
            hits, ["x", "y", "z", "volume_id", "layer_id", "particle_id"], source)
        positions = np.stack([x, y, z], axis=1).astype(np.float32)
        cells = (np.stack(columns(hits, list(CELL_COLUMNS), source), axis=1)
                 if set(CELL_COLUMNS) <= set(names) else None)
        return cls(features=hit_features(x, y, z, volume_id, layer_id, cells),
                   positions=torch.from_numpy(positions),
                   particle_id=torch.from_numpy(particle_id.astype(np.int64)))

    def __len__(self) -> int:
        return len(self.particle_id)

    def to(self, device: torch.device | str) -> "TrackingEvent":
        return TrackingEvent(self.features.to(device), self.positions.to(device),
                             self.particle_id.to(device))


def as_numpy(array: np.ndarray | torch.Tensor) -> np.ndarray:
    """`array` as a NumPy array (a tensor detached and copied to the CPU)."""
    return array.detach().cpu().numpy() if isinstance(array, torch.Tensor) else np.asarray(array)


def count_true_pairs(particle_id: np.ndarray | torch.Tensor) -> int:
    """The number of unordered true pairs of an event: sum of n (n - 1) / 2 over particles."""
    pid = as_numpy(particle_id)
    _, size = np.unique(pid[pid != 0], return_counts=True)
    return int((size * (size - 1) // 2).sum())


def true_pairs(particle_id: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Every unordered true pair of an event as an int64 (2, P) tensor of hit indices, with
    i < j in each column, on the CPU; grouped by particle, in increasing particle_id."""
    pid = as_numpy(particle_id)
    real = np.flatnonzero(pid != 0)
    order = real[np.argsort(pid[real], kind="stable")]  # hits of a particle in index order
    _, start, size = np.unique(pid[order], return_index=True, return_counts=True)
    firsts, seconds = [], []
    for n in np.unique(size[size > 1]):
        group_start = start[size == n][:, None]
        a, b = np.triu_indices(n, 1)
        firsts.append((group_start + a).ravel())
        seconds.append((group_start + b).ravel())
    if not firsts:
        return torch.zeros((2, 0), dtype=torch.int64)
    slots = np.stack([np.concatenate(firsts), np.concatenate(seconds)])
    slots = slots[:, np.argsort(slots[0], kind="stable")]
    return torch.from_numpy(order[slots].astype(np.int64))


def consecutive_pairs(particle_id: np.ndarray | torch.Tensor,
                      positions: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The pairs of hits that follow each other along each particle, ordered by distance
    from the origin (as the track runs outwards): n - 1 of a particle's n hits, as an
    int64 (2, P) tensor with the nearer hit first, on the CPU."""
    pid = as_numpy(particle_id)
    distance = np.linalg.norm(as_numpy(positions).astype(np.float64), axis=1)
    real = np.flatnonzero(pid != 0)
    order = real[np.lexsort((distance[real], pid[real]))]
    follows = pid[order][1:] == pid[order][:-1]
    return torch.from_numpy(np.stack([order[:-1][follows], order[1:][follows]]).astype(np.int64))


def same_particle(particle_id: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
    """Whether each edge (column of `edge_index`) joins two hits of one particle (not noise)."""
    first, second = particle_id[edge_index[0]], particle_id[edge_index[1]]
    return (first == second) & (first != 0)
