"""From simulated hits to TrackML measurements: cells, cluster positions and noise.

Each true hit is moved to its module's local frame, where the particle crosses the sensor
(thickness t, the module's mid-plane at w = 0) along its local direction: from w = -t/2
to w = +t/2. The cells (the pitch grid of the module, ch0 along u and ch1 along v) that
this segment crosses collect charge in proportion to the path length inside them, in
units of a particle at normal incidence (1.0 for the whole thickness), with a Landau-like
fluctuation per hit; cells under `threshold` stay silent, except a hit's largest.
The measured position is the cluster's charge-weighted centre, on the mid-plane.
Noise hits are spread uniformly over the sensitive area, one cell each, and belong to
particle 0. Hits are then numbered, as in TrackML, in (volume, layer, module) order.
"""

from dataclasses import dataclass

import numpy as np

from hepclust.generate.fatras import Modules
from hepclust.io.trackml_cells import sensor

# The steepest slope through the sensor followed in full: tan(88.9 degrees).
MAX_SLOPE = 50.0
SAMPLES_PER_CELL = 4
LANDAU_WIDTH = 0.1  # relative width of the per-hit charge fluctuation


@dataclass(frozen=True)
class Cells:
    """The cells of many hits: the hit (row of the input), ch0, ch1 and charge."""

    hit: np.ndarray
    ch0: np.ndarray
    ch1: np.ndarray
    value: np.ndarray


def to_local(modules: Modules, rows: np.ndarray, position: np.ndarray) -> np.ndarray:
    return np.einsum("nji,nj->ni", modules.rotation[rows], position - modules.center[rows])


def to_global(modules: Modules, rows: np.ndarray, local: np.ndarray) -> np.ndarray:
    return modules.center[rows] + np.einsum("nij,nj->ni", modules.rotation[rows], local)


def clip_to_module(modules: Modules, rows: np.ndarray, local: np.ndarray) -> np.ndarray:
    """Local points moved onto the nearest edge of their module where they fall outside
    (rectangles and trapezoids: the half width along u varies linearly with v)."""
    half_v = modules.half_v[rows]
    v = np.clip(local[:, 1], -half_v, half_v)
    lower, upper = modules.half_u[rows, 0], modules.half_u[rows, 1]
    half_u = lower + (upper - lower) * (v + half_v) / (2 * half_v)
    u = np.clip(local[:, 0], -half_u, half_u)
    return np.stack([u, v, local[:, 2]], axis=1)


def digitize(modules: Modules, rows: np.ndarray, position: np.ndarray, momentum: np.ndarray,
             rng: np.random.Generator, threshold: float = 0.1) -> tuple[np.ndarray, Cells]:
    """(measured global positions, cells) of true hits at `position` (global, mm) on
    modules `rows`, made by particles of `momentum` (global, any unit)."""
    local = to_local(modules, rows, position)
    direction = np.einsum("nji,nj->ni", modules.rotation[rows], momentum)
    pitch, thickness = sensor(modules.volume_id[rows])
    # The path's slope along u and v per unit of depth w, capped for grazing tracks.
    dw = np.where(np.abs(direction[:, 2]) < 1e-12, 1e-12, direction[:, 2])
    slope = np.clip(direction[:, :2] / dw[:, None], -MAX_SLOPE, MAX_SLOPE)
    start = local[:, :2] - slope * (thickness / 2 + local[:, 2])[:, None]
    span = slope * thickness[:, None]
    steps = np.ceil(np.abs(span / pitch).max(axis=1) * SAMPLES_PER_CELL).astype(np.int64) + 1
    hit = np.repeat(np.arange(len(rows)), steps)
    first = np.cumsum(steps) - steps
    fraction = (np.arange(len(hit)) - first[hit] + 0.5) / steps[hit]
    points = start[hit] + span[hit] * fraction[:, None]
    landau = 1.0 - LANDAU_WIDTH * np.log(rng.chisquare(1, len(rows)))
    path = np.sqrt(1.0 + (slope**2).sum(axis=1))  # path length over thickness
    charge = (path * np.clip(landau, 0.3, None) / steps)[hit]
    channel = _channel(modules, rows[hit], points, pitch[hit])
    cells = _merge_cells(hit, channel, charge, threshold)
    centre = _cell_centre(modules, rows[cells.hit], np.stack([cells.ch0, cells.ch1], axis=1),
                          pitch[cells.hit])
    weight = np.bincount(cells.hit, weights=cells.value, minlength=len(rows))
    measured = np.stack([np.bincount(cells.hit, weights=cells.value * centre[:, i],
                                     minlength=len(rows)) / weight for i in range(2)], axis=1)
    local_measured = np.concatenate([measured, np.zeros((len(rows), 1))], axis=1)
    return to_global(modules, rows, clip_to_module(modules, rows, local_measured)), cells


def _grid_origin(modules: Modules, rows: np.ndarray) -> np.ndarray:
    """Local (u, v) of the corner of each module's cell grid, which covers its bounds."""
    return -np.stack([modules.half_u[rows].max(axis=1), modules.half_v[rows]], axis=1)


def _channel(modules: Modules, rows: np.ndarray, points: np.ndarray,
             pitch: np.ndarray) -> np.ndarray:
    """(n, 2) cell indices (ch0, ch1) of local points, kept on the module's grid."""
    origin = _grid_origin(modules, rows)
    cells = np.floor((points - origin) / pitch).astype(np.int64)
    size = np.ceil(-2 * origin / pitch - 1e-9).astype(np.int64)
    return np.clip(cells, 0, size - 1)


def _cell_centre(modules: Modules, rows: np.ndarray, channel: np.ndarray,
                 pitch: np.ndarray) -> np.ndarray:
    return _grid_origin(modules, rows) + (channel + 0.5) * pitch


def _merge_cells(hit: np.ndarray, channel: np.ndarray, charge: np.ndarray,
                 threshold: float) -> Cells:
    """One entry per fired cell of each hit, charges summed; cells below `threshold`
    dropped unless they are their hit's largest."""
    key = (hit << 40) | (channel[:, 0] << 20) | channel[:, 1]
    unique, inverse = np.unique(key, return_inverse=True)
    value = np.bincount(inverse, weights=charge)
    cell_hit = unique >> 40
    largest = np.zeros(cell_hit.max() + 1 if len(cell_hit) else 0)
    np.maximum.at(largest, cell_hit, value)
    keep = (value >= threshold) | (value == largest[cell_hit])
    unique, value = unique[keep], value[keep]
    return Cells(hit=unique >> 40, ch0=(unique >> 20) & 0xFFFFF, ch1=unique & 0xFFFFF,
                 value=value)


def noise_cells(modules: Modules, rows: np.ndarray, position: np.ndarray,
                rng: np.random.Generator) -> Cells:
    """One cell for each noise hit at global `position` on modules `rows`: the cell under
    it, with a charge in the range real hits give."""
    local = to_local(modules, rows, position)
    pitch, _ = sensor(modules.volume_id[rows])
    channel = _channel(modules, rows, local[:, :2], pitch)
    return Cells(hit=np.arange(len(rows)), ch0=channel[:, 0], ch1=channel[:, 1],
                 value=rng.uniform(0.1, 1.5, len(rows)))


def noise(modules: Modules, n: int, rng: np.random.Generator,
          among: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(module rows, positions) of `n` noise hits, uniform over the sensitive area of the
    modules `among` (a mask; all by default)."""
    half_width = modules.half_u.mean(axis=1)
    area = half_width * modules.half_v
    if among is not None:
        area = np.where(among, area, 0.0)
    rows = rng.choice(len(area), size=n, p=area / area.sum())
    # Uniform in a trapezoid: v from its linear density, then u across the width at v.
    lower, upper = modules.half_u[rows, 0], modules.half_u[rows, 1]
    t = _linear_density_sample(lower, upper, rng.random(n))
    v = (2 * t - 1) * modules.half_v[rows]
    half_u = lower + (upper - lower) * t
    u = rng.uniform(-1.0, 1.0, n) * half_u
    local = np.stack([u, v, np.zeros(n)], axis=1)
    return rows, to_global(modules, rows, local)


def _linear_density_sample(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    """t in [0, 1] with density proportional to a + (b - a) t, by inverting its CDF."""
    slope = b - a
    flat = np.abs(slope) < 1e-9 * np.maximum(a, b)
    safe = np.where(flat, 1.0, slope)
    root = (-a + np.sqrt(a * a + u * safe * (a + b))) / safe
    return np.where(flat, u, root)
