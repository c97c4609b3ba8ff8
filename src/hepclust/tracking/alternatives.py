"""The obvious alternatives to the learned Split/Stop clustering, run on the same events:
DBSCAN on helix-unrolled hits (the classic baseline of Table 3.2), and DBSCAN or
connected components on what the pipeline already made: the stage-1 embedding, the
GNN's output and the refined graph."""

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from hepclust.tracking.baselines import (
    connected_components,
    dbscan_embedding,
    dbscan_helix,
    dbscan_trackml_benchmark,
)
from hepclust.tracking.graph import neighbour_graph

HELIX_CURVATURE_MAX = 1e-3  # 1/mm: a 0.3 GeV particle in 2 T
FIELD_T = 2.0  # TrackML's solenoid


def curvature_of(pt: float) -> float:
    """1 / (2 R) in 1/mm of a unit-charge particle of transverse momentum `pt` (GeV) in
    FIELD_T: R = pt / (0.3 B) metres."""
    return 0.3 * FIELD_T / (2.0 * pt * 1000.0)
# Neighbours per hit of the radius graph on the GNN output: more than a track has hits,
# and a bound on the work where a poorly trained GNN puts every hit in one ball.
GNN_NEIGHBOURS = 32


@dataclass(frozen=True)
class BaselineSettings:
    helix_eps: float = 0.01
    helix_curvatures: int = 41  # steps of the scan over [-1e-3, 1e-3] / mm
    embedding_eps: float = 0.1  # DBSCAN on the stage-1 embedding
    gnn_eps: float = 0.3  # DBSCAN and the radius graph on the GNN's output
    min_samples: int = 3
    helix_z0: tuple[float, ...] = ()  # dbscan_helix_z0's origins on the beam line (mm)
    helix_min_pt: float = 0.15  # GeV: dbscan_helix_z0's curvature scan reaches it in 2 T


def baseline_tracks(x: np.ndarray, y: np.ndarray, z: np.ndarray, embedding: torch.Tensor,
                    gnn_output: torch.Tensor, refined: torch.Tensor,
                    settings: BaselineSettings,
                    initial: torch.Tensor | None = None) -> dict[str, tuple[np.ndarray, float]]:
    """name -> (track id of each hit, seconds) of every alternative on one event; with
    Split's starting clusters `initial`, also those as tracks (`split_stop_start`: what
    Split/Stop would give if it divided nothing)."""
    n = len(x)
    curvatures = np.linspace(-HELIX_CURVATURE_MAX, HELIX_CURVATURE_MAX,
                             settings.helix_curvatures)
    methods: dict[str, Callable[[], np.ndarray]] = {
        "dbscan_helix": lambda: dbscan_helix(x, y, z, settings.helix_eps, settings.min_samples,
                                             curvatures),
        "dbscan_trackml_benchmark": lambda: dbscan_trackml_benchmark(x, y, z),
        "dbscan_embedding": lambda: dbscan_embedding(embedding, settings.embedding_eps,
                                                     settings.min_samples),
        "dbscan_gnn": lambda: dbscan_embedding(gnn_output, settings.gnn_eps,
                                               settings.min_samples),
        "components_gnn": lambda: connected_components(
            neighbour_graph(gnn_output, GNN_NEIGHBOURS, settings.gnn_eps), n),
        "components_refined": lambda: connected_components(refined, n),
    }
    if settings.helix_z0:
        # The thesis's row: a z0 scan, curvatures down to helix_min_pt, min_samples 1.
        wide = np.linspace(-1, 1, settings.helix_curvatures) * curvature_of(settings.helix_min_pt)
        methods["dbscan_helix_z0"] = lambda: dbscan_helix(
            x, y, z, settings.helix_eps, 1, wide, z0s=settings.helix_z0)
    if initial is not None:
        methods["split_stop_start"] = lambda: initial.cpu().numpy()
    found = {}
    for name, method in methods.items():
        began = time.perf_counter()
        track_id = method()
        found[name] = (track_id, time.perf_counter() - began)
    return found
