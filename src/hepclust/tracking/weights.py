"""TrackML's per-hit weights, as the trackml-library computes them (``weights.py``).

A hit's weight is its particle's pT weight times its order weight along the track,
normalised to sum to 1 over the event:

* pT weight: 0.2 up to 0.5 GeV, rising linearly to 1 at 3 GeV, 1 above (and 0 below
  0.05 GeV, the library's guard against hits without a particle);
* order weight: the particle's hits ordered by distance from its production vertex, hit
  ``i`` of ``n`` takes the template ``ORDER_TEMPLATE`` at ``i * 8 / (n - 1)`` (linear
  interpolation), normalised so that each particle's order weights sum to 1. Particles
  with fewer than 4 hits get 0; longer than 20 hits, the template of 20 hits is used and
  hits past the 20th get 0.

Noise hits (particle_id 0) weigh nothing. The library orders hits by ``|tz - vz|``; we
use the 3D distance to the vertex, which orders the hits of a track the same way except
for loopers.
"""

import numpy as np

from hepclust.errors import InputError
from hepclust.tracking.tables import Table, columns

ORDER_TEMPLATE = np.array([10.0, 8.0, 6.0, 5.0, 3.0, 3.0, 3.0, 5.0, 6.0])
MIN_HITS, MAX_HITS = 4, 20
PT_POINTS, PT_WEIGHTS = (0.05, 0.5, 3.0), (0.2, 0.2, 1.0)


def _order_matrix() -> np.ndarray:
    """Order weights indexed by (hits of the particle, index of the hit)."""
    nhits = np.arange(MAX_HITS + 1)[:, None]
    ihit = np.arange(MAX_HITS)[None, :]
    support = ihit * (len(ORDER_TEMPLATE) - 1) / np.maximum(nhits - 1, 1)
    weights = np.interp(support, np.arange(len(ORDER_TEMPLATE)), ORDER_TEMPLATE)
    weights[(nhits < MIN_HITS) | (ihit >= nhits)] = 0.0
    totals = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)


ORDER_MATRIX = _order_matrix()


def pt_weight(pt: np.ndarray) -> np.ndarray:
    """The pT (GeV) part of the weight."""
    return np.interp(pt, PT_POINTS, PT_WEIGHTS, left=0.0, right=PT_WEIGHTS[-1])


def order_weight(particle_id: np.ndarray, distance: np.ndarray) -> np.ndarray:
    """The order part of the weight of each hit, given its particle and its distance from
    that particle's vertex; 0 for noise."""
    particle_id, distance = np.asarray(particle_id), np.asarray(distance)
    order = np.lexsort((distance, particle_id))
    sorted_ids = particle_id[order]
    _, start, nhits = np.unique(sorted_ids, return_index=True, return_counts=True)
    ihit = np.arange(len(order)) - np.repeat(start, nhits)
    nhits = np.repeat(nhits, nhits)
    weight = np.zeros(len(order))
    weight[order] = np.where(ihit < MAX_HITS,
                             ORDER_MATRIX[np.minimum(nhits, MAX_HITS),
                                          np.minimum(ihit, MAX_HITS - 1)], 0.0)
    weight[particle_id == 0] = 0.0
    return weight


def trackml_weights(particle_id: np.ndarray, distance: np.ndarray,
                    pt: np.ndarray) -> np.ndarray:
    """TrackML's weight of each hit, from per-hit arrays: its particle, its distance from
    the particle's production vertex, and the particle's pT (GeV). Sums to 1, or is all
    zeros when no hit has weight."""
    weight = pt_weight(np.asarray(pt, dtype=np.float64)) * order_weight(particle_id, distance)
    total = weight.sum()
    return weight / total if total > 0 else weight


def event_weights(hits: Table, particles: Table) -> np.ndarray:
    """TrackML's weights (float32) of the hits of one event, from their truth positions
    (tx, ty, tz) and their particles' vertex and momentum. Hits whose particle is not in
    `particles` weigh nothing, as in the library."""
    hit_particle, tx, ty, tz = columns(hits, ["particle_id", "tx", "ty", "tz"], "hits table")
    particle_id, vx, vy, vz, px, py = columns(
        particles, ["particle_id", "vx", "vy", "vz", "px", "py"], "particles table")
    order = np.argsort(particle_id, kind="stable")
    sorted_ids = particle_id[order]
    repeated = sorted_ids[1:][sorted_ids[1:] == sorted_ids[:-1]]
    if repeated.size:
        raise InputError("particles table", f"particle_id {repeated[0]} appears more than once")
    slot = np.minimum(np.searchsorted(sorted_ids, hit_particle), max(len(order) - 1, 0))
    found = (sorted_ids[slot] == hit_particle) if len(order) else np.zeros(len(tx), bool)
    row = order[slot[found]]
    distance, pt = np.zeros(len(tx)), np.zeros(len(tx))
    distance[found] = np.sqrt((tx[found] - vx[row].astype(np.float64)) ** 2
                              + (ty[found] - vy[row].astype(np.float64)) ** 2
                              + (tz[found] - vz[row].astype(np.float64)) ** 2)
    pt[found] = np.hypot(px[row].astype(np.float64), py[row])
    return trackml_weights(hit_particle, distance, pt).astype(np.float32)
