"""TrackML's pixel and strip cells, and the cluster-shape features derived from them.

A TrackML event's ``event*-cells.csv`` lists, per hit, the sensor cells that fired:
``hit_id, ch0, ch1, value`` (ch0 counts cells along the module's local u axis, the fine
r-phi pitch; ch1 along v; value is the charge). A charged particle crossing a sensor of
thickness t at an angle fires cells over a length t * tan(angle) along each axis, so
the extent of a hit's cells says which way the particle went (Exa.TrkX and GNN4ITk feed
these as hit features). Per hit we give:

- ``cell_count``: the cells of the hit; ``cell_value``: their total charge,
- ``cell_extent_u``, ``cell_extent_v``: the cluster's length along u and v in mm (cells
  spanned times the pitch),
- ``cell_theta_u``, ``cell_theta_v``: the incidence angles those lengths imply,
  arctan((extent - pitch) / thickness), in radians: a track whose path projects onto L
  along an axis fires L / pitch + 1 cells on average, whatever its offset.

Pitches and thicknesses are the TrackML detector's (the ACTS generic detector), per
volume. Hits without cells (no cells file, or none listed for the hit) get zeros.
"""

from pathlib import Path

import numpy as np
import pyarrow as pa

from hepclust.errors import InputError

# Pitch (mm) along local u and v, sensor thickness (mm), and the volumes of each part.
PITCH_MM = {"pixel": (0.05, 0.05), "short strips": (0.08, 1.2), "long strips": (0.12, 10.8)}
THICKNESS_MM = {"pixel": 0.15, "short strips": 0.25, "long strips": 0.35}
VOLUMES = {"pixel": (7, 8, 9), "short strips": (12, 13, 14), "long strips": (16, 17, 18)}

TRACKML_CELLS = pa.schema([
    pa.field("hit_id", pa.int64()),
    pa.field("ch0", pa.int32()),
    pa.field("ch1", pa.int32()),
    pa.field("value", pa.float32()),
])
CELL_FEATURES = pa.schema([
    pa.field("cell_count", pa.int16()),
    pa.field("cell_value", pa.float32()),
    pa.field("cell_extent_u", pa.float32()),
    pa.field("cell_extent_v", pa.float32()),
    pa.field("cell_theta_u", pa.float32()),
    pa.field("cell_theta_v", pa.float32()),
])


def sensor(volume_id: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """((n, 2) pitch along u and v, (n,) thickness) in mm of hits in these volumes."""
    volume_id = np.asarray(volume_id)
    pitch, thickness = np.full((len(volume_id), 2), np.nan), np.full(len(volume_id), np.nan)
    for part, volumes in VOLUMES.items():
        chosen = np.isin(volume_id, volumes)
        pitch[chosen], thickness[chosen] = PITCH_MM[part], THICKNESS_MM[part]
    if np.isnan(thickness).any():
        unknown = np.unique(volume_id[np.isnan(thickness)])
        raise ValueError(f"no TrackML sensor for volume(s) {unknown.tolist()}")
    return pitch, thickness


def cell_features(hit_id: np.ndarray, volume_id: np.ndarray, cells: pa.Table,
                  source: str | Path = "cells") -> pa.Table:
    """The `CELL_FEATURES` of hits `hit_id` (in volumes `volume_id`) from their `cells`."""
    hit_id = np.asarray(hit_id)
    cell_hit = cells["hit_id"].to_numpy()
    order = np.argsort(hit_id, kind="stable")
    slot = np.minimum(np.searchsorted(hit_id[order], cell_hit), max(len(hit_id) - 1, 0))
    known = hit_id[order][slot] == cell_hit if len(hit_id) else np.zeros(0, bool)
    if not known.all():
        raise InputError(source, f"lists cells of {len(np.unique(cell_hit[~known]))} hit(s) "
                                 f"absent from the hits file, e.g. hit_id {cell_hit[~known][0]}")
    values = cells["value"].to_numpy()
    if (values < 0).any():
        raise InputError(source, f"has {int((values < 0).sum())} cell(s) with a negative value")
    row = order[slot]
    n = len(hit_id)
    count = np.bincount(row, minlength=n)
    total = np.bincount(row, weights=values, minlength=n)
    extents = []
    for channel in ("ch0", "ch1"):
        ch = cells[channel].to_numpy().astype(np.int64)
        low, high = np.full(n, np.iinfo(np.int64).max), np.full(n, np.iinfo(np.int64).min)
        np.minimum.at(low, row, ch)
        np.maximum.at(high, row, ch)
        extents.append(np.where(count > 0, high - low + 1, 0))
    pitch, thickness = sensor(volume_id)
    extent_u, extent_v = extents[0] * pitch[:, 0], extents[1] * pitch[:, 1]
    return pa.table({
        "cell_count": pa.array(count, pa.int16()),
        "cell_value": pa.array(total, pa.float32()),
        "cell_extent_u": pa.array(extent_u, pa.float32()),
        "cell_extent_v": pa.array(extent_v, pa.float32()),
        "cell_theta_u": pa.array(_angle(extent_u, pitch[:, 0], thickness), pa.float32()),
        "cell_theta_v": pa.array(_angle(extent_v, pitch[:, 1], thickness), pa.float32()),
    }, schema=CELL_FEATURES)


def _angle(extent: np.ndarray, pitch: np.ndarray, thickness: np.ndarray) -> np.ndarray:
    return np.arctan(np.maximum(extent - pitch, 0.0) / thickness)


def no_cell_features(n: int) -> pa.Table:
    """`CELL_FEATURES` of `n` hits that have no cells: zeros."""
    return pa.table({f.name: pa.array(np.zeros(n), f.type) for f in CELL_FEATURES},
                    schema=CELL_FEATURES)
