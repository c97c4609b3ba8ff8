"""Thin out events to a random fraction of their particles: the thesis's "10% of tracks".

Each event keeps ``round(fraction * n)`` of its n particles (particle_id != 0), chosen at
random, with all their hits, and as large a share of its noise hits; its weights are
renormalised to sum to 1 (or stay 0 if none is left). Hits of a particle missing from
the particles table go with the particles left out. Tables keep their schema and the
order of the rows kept.
"""

import numpy as np
import pandas as pd
import pyarrow as pa

from hepclust.tracking.tables import columns


def subsample_event(hits: pa.Table, particles: pa.Table, fraction: float,
                    rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    """(hits, particles) of one event, thinned to `fraction` of its particles."""
    return _subsample(hits, particles, np.zeros(hits.num_rows, dtype=np.int64),
                      np.zeros(particles.num_rows, dtype=np.int64), fraction, rng)


def subsample_events(hits: pa.Table, particles: pa.Table, fraction: float,
                     rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    """Like `subsample_event` for tables of many events told apart by ``event_id``, each
    event thinned and renormalised on its own."""
    (hit_event,) = columns(hits, ["event_id"], "hits table")
    (particle_event,) = columns(particles, ["event_id"], "particles table")
    return _subsample(hits, particles, hit_event, particle_event, fraction, rng)


def _subsample(hits: pa.Table, particles: pa.Table, hit_event: np.ndarray,
               particle_event: np.ndarray, fraction: float,
               rng: np.random.Generator) -> tuple[pa.Table, pa.Table]:
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], not {fraction}")
    hit_particle, weight = columns(hits, ["particle_id", "weight"], "hits table")
    (particle_id,) = columns(particles, ["particle_id"], "particles table")

    real = particle_id != 0
    keep_particle = np.zeros(particles.num_rows, dtype=bool)
    keep_particle[real] = _random_share(particle_event[real], fraction, rng)
    noise = hit_particle == 0
    keep_hit = noise.copy()
    keep_hit[noise] = _random_share(hit_event[noise], fraction, rng)
    kept = pd.MultiIndex.from_arrays([particle_event[keep_particle], particle_id[keep_particle]])
    keep_hit[~noise] = pd.MultiIndex.from_arrays(
        [hit_event[~noise], hit_particle[~noise]]).isin(kept)

    hits = hits.filter(pa.array(keep_hit))
    column = hits.schema.get_field_index("weight")
    renormalised = _normalised(weight[keep_hit], hit_event[keep_hit])
    hits = hits.set_column(column, hits.schema.field(column),
                           pa.array(renormalised, hits.schema.field(column).type))
    return hits, particles.filter(pa.array(keep_particle))


def _random_share(groups: np.ndarray, fraction: float, rng: np.random.Generator) -> np.ndarray:
    """Mask keeping ``round(fraction * n)`` random members of each group of n."""
    order = np.lexsort((rng.random(len(groups)), groups))
    _, start, size = np.unique(groups[order], return_index=True, return_counts=True)
    rank = np.arange(len(order)) - np.repeat(start, size)
    keep = np.empty(len(order), dtype=bool)
    keep[order] = rank < np.repeat(np.floor(fraction * size + 0.5), size)
    return keep


def _normalised(weight: np.ndarray, event: np.ndarray) -> np.ndarray:
    _, index = np.unique(event, return_inverse=True)
    totals = np.bincount(index, weights=weight.astype(np.float64))[index]
    return np.divide(weight, totals, out=np.zeros(len(weight)), where=totals > 0)
