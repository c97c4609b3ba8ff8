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
three windows: per layer pair, the outer hits sorted by eta bin and phi, and the dphi
window in the eta bins the deta window overlaps read off with binary searches, so the
work is about the candidate pairs it yields, not all pairs.

Windows at one quantile for every layer pair are wasteful: a few layer pairs crossed by
curling low-momentum particles get dphi windows over a radian wide and hold a large share
of all candidates for a handful of true pairs. With `lost_fraction` > 0 each layer pair
instead picks its quantile from a ladder (q, 2q, 5q, ... up to 100q), or is dropped, so
that the training events' candidates are fewest while at most that share of their
consecutive pairs falls outside: greedily, the narrowing that saves the most candidates
per true pair lost goes first (`_cheapest_windows`).
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
QUANTILE_LADDER = (1, 2, 5, 10, 20, 50, 100)  # multiples of `quantile` a window may narrow to


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
        """The event's graph: an int64 (2, E) tensor of unordered pairs, i < j (in no
        particular order), on the device of the event."""
        hits = _geometry(event)
        by_layer = _hits_by_layer(hits)
        # A hit pair can be found twice only on a layer pair whose reverse is also kept
        # (or on a pair of one layer with itself): only those pairs need deduplicating.
        reversible = {tuple(pair) for pair in self.layers.tolist()}
        found = {True: [], False: []}
        for layers, low, high in zip(self.layers, self.low, self.high, strict=True):
            pairs = _window_pairs(hits, by_layer, layers, low, high)
            if pairs is not None:
                # i < j while a layer pair's few thousand pairs are still in the cache
                found[(int(layers[1]), int(layers[0])) in reversible].append(
                    np.stack([np.minimum(*pairs), np.maximum(*pairs)]))
        if found[True]:
            found[False].append(undirected(torch.from_numpy(np.concatenate(found[True], axis=1)),
                                           len(event)).numpy())
        pairs = (np.concatenate(found[False], axis=1) if found[False]
                 else np.zeros((2, 0), dtype=np.int64))
        return torch.from_numpy(pairs).to(event.positions.device)

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


def _hits_by_layer(hits: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    return {int(key): np.flatnonzero(hits["layer"] == key) for key in np.unique(hits["layer"])}


def _window_pairs(hits: dict[str, np.ndarray], by_layer: dict[int, np.ndarray],
                  layers: np.ndarray, low: np.ndarray, high: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray] | None:
    """(inner hits, outer hits) of the pairs on the layer pair `layers` inside the window
    [low, high] over `QUANTITIES`; None where a layer has no hits."""
    inner, outer = by_layer.get(int(layers[0])), by_layer.get(int(layers[1]))
    if inner is None or outer is None:
        return None
    # The binary searches leave only pairs inside the dphi window and near the deta one;
    # the deta cut goes before z0, which is computed for its survivors only.
    a, b = _phi_eta_window_pairs(hits, inner, outer, low, high)
    deta = hits["eta"][b] - hits["eta"][a]
    keep = (deta >= low[1]) & (deta <= high[1]) & (a != b)
    a, b = a[keep], b[keep]
    z0 = _z0(hits, a, b)
    keep = (z0 >= low[2]) & (z0 <= high[2])
    return a[keep], b[keep]


def _phi_eta_window_pairs(hits: dict[str, np.ndarray], inner: np.ndarray, outer: np.ndarray,
                          low: np.ndarray, high: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (inner hit, outer hit) with phi_outer - phi_inner in [low[0], high[0]] modulo
    2 pi and eta_outer - eta_inner in the two eta bins, each as wide as the deta window
    [low[1], high[1]], that the window overlaps: the outer hits sorted by (eta bin, phi)
    and each query read off with binary searches, so the work is about the pairs found."""
    width = max(high[1] - low[1], 1e-6)
    turn = 2 * np.pi
    span = 2 * turn  # the sort key's room per eta bin, wider than a turn
    angle = np.remainder(hits["phi"][outer] + np.pi, turn)
    key = np.floor(hits["eta"][outer] / width) * span + angle
    order = np.argsort(key, kind="stable")
    outer, key = outer[order], key[order]
    first_bin = np.floor((hits["eta"][inner] + low[1]) / width)
    start = np.remainder(hits["phi"][inner] + low[0] + np.pi, turn)
    stop = start + min(high[0] - low[0], turn)
    wrapped = stop > turn  # the window runs past the end of the turn: two intervals
    lows, highs, used = [], [], []
    for bin_ in (first_bin, first_bin + 1):
        lows += [bin_ * span + start, bin_ * span]
        highs += [bin_ * span + np.minimum(stop, turn), bin_ * span + stop - turn]
        used += [np.ones_like(wrapped), wrapped]
    starts = np.searchsorted(key, np.concatenate(lows), side="left")
    counts = np.searchsorted(key, np.concatenate(highs), side="right") - starts
    counts = np.where(np.concatenate(used), np.maximum(counts, 0), 0)
    offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return (np.repeat(np.tile(inner, len(lows)), counts),
            outer[np.repeat(starts, counts) + offsets])


def learn_layer_pairs(events: Sequence[TrackingEvent], quantile: float = 0.001,
                      margin: float = 0.1, min_count: int = 3,
                      lost_fraction: float = 0.0) -> LayerPairGraph:
    """The layer pairs and windows that the consecutive hits of the particles of `events`
    imply (see the module's text); with `lost_fraction` > 0, each pair's window narrowed
    (or the pair dropped) to hold the fewest candidates on `events` while giving up at
    most that share of their consecutive pairs."""
    if not 0 <= quantile < 0.5:
        raise ValueError(f"quantile must be in [0, 0.5), not {quantile}")
    if not 0 <= lost_fraction < 1:
        raise ValueError(f"lost_fraction must be in [0, 1), not {lost_fraction}")
    geometries = [_geometry(event) for event in events]
    keys, values = [], []
    for event, hits in zip(events, geometries, strict=True):
        inner, outer = consecutive_pairs(event.particle_id, event.positions).numpy()
        keys.append(np.stack([hits["layer"][inner], hits["layer"][outer]], axis=1))
        values.append(_pair_quantities(hits, inner, outer))
    keys, values = np.concatenate(keys), np.concatenate(values)
    layers, which, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    which = which.ravel()
    kept = np.flatnonzero(counts >= min_count)
    layers = layers[kept].astype(np.int64)
    ladder = ([quantile * step for step in QUANTILE_LADDER if quantile * step < 0.5]
              if lost_fraction > 0 and quantile > 0 else [quantile])
    low, high = np.empty((len(kept), len(ladder), 3)), np.empty((len(kept), len(ladder), 3))
    inside = np.empty((len(kept), len(ladder)))
    for row, pair in enumerate(kept):
        seen = values[which == pair]
        for rung, q in enumerate(ladder):
            lo, hi = np.quantile(seen, q, axis=0), np.quantile(seen, 1 - q, axis=0)
            pad = margin * (hi - lo) + WINDOW_FLOOR
            low[row, rung], high[row, rung] = lo - pad, hi + pad
            inside[row, rung] = np.all((seen >= low[row, rung]) & (seen <= high[row, rung]),
                                       axis=1).sum()
    if len(ladder) == 1:
        return LayerPairGraph(layers, low[:, 0], high[:, 0])
    candidates = sum(_candidate_counts(hits, layers, low, high) for hits in geometries)
    rung = _cheapest_windows(candidates, inside, lost_fraction * len(values))
    used = np.flatnonzero(rung < len(ladder))
    return LayerPairGraph(layers[used], low[used, rung[used]], high[used, rung[used]])


def _candidate_counts(hits: dict[str, np.ndarray], layers: np.ndarray, low: np.ndarray,
                      high: np.ndarray) -> np.ndarray:
    """(P, Q) candidate pairs of an event's `hits` (`_geometry`) on each of the P layer
    pairs with each of its Q windows `low`, `high` (P, Q, 3)."""
    by_layer = _hits_by_layer(hits)
    counts = np.zeros(low.shape[:2])
    for row, pair in enumerate(layers):
        for rung in range(low.shape[1]):
            pairs = _window_pairs(hits, by_layer, pair, low[row, rung], high[row, rung])
            counts[row, rung] = 0 if pairs is None else len(pairs[0])
    return counts


def _cheapest_windows(candidates: np.ndarray, inside: np.ndarray,
                      allowed_loss: float) -> np.ndarray:
    """Each layer pair's rung (0 the widest window, Q: dropped), narrowed step by step,
    the step that saves the most `candidates` (P, Q) per true pair lost (`inside`, P, Q)
    first, while the true pairs lost stay within `allowed_loss`."""
    pairs, rungs = candidates.shape
    candidates = np.concatenate([candidates, np.zeros((pairs, 1))], axis=1)
    inside = np.concatenate([inside, np.zeros((pairs, 1))], axis=1)
    rung, rows, lost = np.zeros(pairs, dtype=np.int64), np.arange(pairs), 0.0
    while True:
        after = np.minimum(rung + 1, rungs)
        saved = candidates[rows, rung] - candidates[rows, after]
        loss = inside[rows, rung] - inside[rows, after]
        # A step that loses no true pair and saves candidates ranks ahead of all others.
        gain = np.where(rung < rungs, saved / np.maximum(loss, 1e-9), -np.inf)
        best = int(np.argmax(gain))
        if gain[best] <= 0 or lost + loss[best] > allowed_loss:
            return rung
        lost += loss[best]
        rung[best] += 1
