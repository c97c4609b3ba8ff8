"""A geometric first stage: join hits on pairs of detector layers that tracks cross one
after the other, inside windows learned from the training events' truth (the layer-pair
or module-map graph of Exa.TrkX and ACTS's seeding, in place of the thesis's learned
embedding graph).

From the consecutive hits of every training particle (`consecutive_pairs`) we count the
ordered pairs of layers, (volume_id, layer_id) inner to outer, and keep those seen
`min_count` times or more. For each kept layer pair and three quantities of its true
pairs,

    dphi = phi_outer - phi_inner (wrapped into [-pi, pi)),
    deta = eta_outer - eta_inner (eta of each hit's position seen from the origin),
    z0   = z_inner - r_inner (z_outer - z_inner) / (r_outer - r_inner)  (0 where the two
           radii are within 1 mm: endcap disks at one radius have no z0),

the window is [q, 1 - q] of the true pairs' values widened by `margin` of its width on
each side. An event's graph holds every pair of hits on a kept layer pair inside all
three windows: per layer pair, the outer hits sorted in phi and the dphi window read off
with a binary search, so the work is the candidate pairs it yields, not all pairs.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from hepclust.errors import InputError
from hepclust.io.parquet import atomic_path
from hepclust.tracking.graph import undirected
from hepclust.tracking.hit_features import TrackingEvent, consecutive_pairs, detector_layers

QUANTITIES = ("dphi", "deta", "z0")
MIN_DR_FOR_Z0 = 1.0  # mm
WINDOW_FLOOR = np.array([0.002, 0.002, 1.0])  # the least half-width: rad, eta, mm


def _geometry(event: TrackingEvent) -> dict[str, np.ndarray]:
    x, y, z = event.positions.detach().cpu().double().numpy().T
    r = np.hypot(x, y)
    return {"z": z, "r": r, "phi": np.arctan2(y, x), "eta": np.arcsinh(z / np.maximum(r, 1e-9)),
            "layer": detector_layers(event.features).cpu().numpy()}


def _z0(hits: dict[str, np.ndarray], inner: np.ndarray, outer: np.ndarray) -> np.ndarray:
    dr = hits["r"][outer] - hits["r"][inner]
    sloped = np.abs(dr) > MIN_DR_FOR_Z0
    slope = (hits["z"][outer] - hits["z"][inner]) / np.where(sloped, dr, 1.0)
    return np.where(sloped, hits["z"][inner] - hits["r"][inner] * slope, 0.0)


def _pair_quantities(hits: dict[str, np.ndarray], inner: np.ndarray,
                     outer: np.ndarray) -> np.ndarray:
    """(P, 3) dphi, deta, z0 of the pairs inner -> outer."""
    dphi = np.remainder(hits["phi"][outer] - hits["phi"][inner] + np.pi, 2 * np.pi) - np.pi
    return np.stack([dphi, hits["eta"][outer] - hits["eta"][inner], _z0(hits, inner, outer)],
                    axis=1)


@dataclass(frozen=True)
class LayerPairGraph:
    """The kept layer pairs (P, 2) int64 (inner, outer layer keys, volume_id * 100 +
    layer_id) and their windows low, high (P, 3) float64 over `QUANTITIES`."""

    layers: np.ndarray
    low: np.ndarray
    high: np.ndarray

    def __len__(self) -> int:
        return len(self.layers)

    def edges(self, event: TrackingEvent) -> torch.Tensor:
        """The event's graph: an int64 (2, E) tensor of unordered pairs, i < j, on the
        device of the event."""
        hits = _geometry(event)
        by_layer = {int(key): np.flatnonzero(hits["layer"] == key)
                    for key in np.unique(hits["layer"])}
        firsts, seconds = [], []
        for (inner_layer, outer_layer), low, high in zip(self.layers, self.low, self.high,
                                                         strict=True):
            inner = by_layer.get(int(inner_layer))
            outer = by_layer.get(int(outer_layer))
            if inner is None or outer is None:
                continue
            # The binary search leaves only pairs inside the dphi window; the cheap deta
            # cut goes before z0, which is computed for its survivors only.
            a, b = _phi_window_pairs(hits["phi"], inner, outer, low[0], high[0])
            deta = hits["eta"][b] - hits["eta"][a]
            keep = (deta >= low[1]) & (deta <= high[1]) & (a != b)
            a, b = a[keep], b[keep]
            z0 = _z0(hits, a, b)
            keep = (z0 >= low[2]) & (z0 <= high[2])
            firsts.append(a[keep])
            seconds.append(b[keep])
        device = event.positions.device
        if not firsts:
            return torch.zeros((2, 0), dtype=torch.int64, device=device)
        pairs = torch.from_numpy(np.stack([np.concatenate(firsts), np.concatenate(seconds)]))
        return undirected(pairs, len(event)).to(device)

    def save(self, path: str | Path) -> None:
        with atomic_path(path) as tmp:
            torch.save({"kind": "layer_pairs", "quantities": list(QUANTITIES),
                        "layers": torch.from_numpy(self.layers),
                        "low": torch.from_numpy(self.low),
                        "high": torch.from_numpy(self.high)}, tmp)

    @classmethod
    def load(cls, path: str | Path) -> "LayerPairGraph":
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "no such file")
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:
            raise InputError(path, f"not a readable layer-pair graph ({err})") from err
        if not isinstance(saved, dict) or saved.get("kind") != "layer_pairs":
            raise InputError(path, "does not hold a layer-pair graph")
        return cls(saved["layers"].numpy(), saved["low"].numpy(), saved["high"].numpy())


def _phi_window_pairs(phi: np.ndarray, inner: np.ndarray, outer: np.ndarray, low: float,
                      high: float) -> tuple[np.ndarray, np.ndarray]:
    """Every (inner hit, outer hit) with phi_outer - phi_inner in [low, high] modulo 2 pi."""
    outer = outer[np.argsort(phi[outer], kind="stable")]
    around = np.concatenate([phi[outer] - 2 * np.pi, phi[outer], phi[outer] + 2 * np.pi])
    outer3 = np.concatenate([outer, outer, outer])
    start = np.searchsorted(around, phi[inner] + low, side="left")
    stop = np.searchsorted(around, phi[inner] + high, side="right")
    stop = np.minimum(stop, start + len(outer))  # a window wider than 2 pi: each hit once
    count = stop - start
    offsets = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    return np.repeat(inner, count), outer3[np.repeat(start, count) + offsets]


def learn_layer_pairs(events: Sequence[TrackingEvent], quantile: float = 0.001,
                      margin: float = 0.1, min_count: int = 3) -> LayerPairGraph:
    """The layer pairs and windows that the consecutive hits of the particles of `events`
    imply (see the module's text)."""
    if not 0 <= quantile < 0.5:
        raise ValueError(f"quantile must be in [0, 0.5), not {quantile}")
    keys, values = [], []
    for event in events:
        hits = _geometry(event)
        inner, outer = consecutive_pairs(event.particle_id, event.positions).numpy()
        keys.append(np.stack([hits["layer"][inner], hits["layer"][outer]], axis=1))
        values.append(_pair_quantities(hits, inner, outer))
    keys, values = np.concatenate(keys), np.concatenate(values)
    layers, which, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    which = which.ravel()
    kept = np.flatnonzero(counts >= min_count)
    low, high = np.empty((len(kept), 3)), np.empty((len(kept), 3))
    for row, pair in enumerate(kept):
        seen = values[which == pair]
        lo, hi = np.quantile(seen, quantile, axis=0), np.quantile(seen, 1 - quantile, axis=0)
        pad = margin * (hi - lo) + WINDOW_FLOOR
        low[row], high[row] = lo - pad, hi + pad
    return LayerPairGraph(layers[kept].astype(np.int64), low, high)
