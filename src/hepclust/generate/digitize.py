"""From simulated hits to TrackML measurements: module-frame smearing and noise.

Each true hit is moved to its module's local frame, its two local coordinates are smeared
with the pitch / sqrt(12) of its subdetector (and kept inside the module), and it is
moved back. Noise hits are spread uniformly over the sensitive area; they belong to
particle 0. Hits are then numbered, as in TrackML, in (volume, layer, module) order.
"""

import numpy as np

from hepclust.generate.fatras import Modules

# Pitch (mm) along the module's local u (r-phi) and v axes, and the volumes of each part.
PITCH_MM = {"pixel": (0.05, 0.05), "short strips": (0.08, 1.2), "long strips": (0.12, 10.8)}
VOLUMES = {"pixel": (7, 8, 9), "short strips": (12, 13, 14), "long strips": (16, 17, 18)}


def resolution(volume_id: np.ndarray) -> np.ndarray:
    """(n, 2) Gaussian resolution (mm) along local u and v of hits in these volumes."""
    sigma = np.full((len(volume_id), 2), np.nan)
    for part, volumes in VOLUMES.items():
        sigma[np.isin(volume_id, volumes)] = np.asarray(PITCH_MM[part]) / np.sqrt(12)
    if np.isnan(sigma).any():
        unknown = np.unique(np.asarray(volume_id)[np.isnan(sigma[:, 0])])
        raise ValueError(f"no pitch for volume(s) {unknown.tolist()}")
    return sigma


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


def smear(modules: Modules, rows: np.ndarray, position: np.ndarray,
          rng: np.random.Generator) -> np.ndarray:
    """Measured positions of true hits at `position` on modules `rows`."""
    local = to_local(modules, rows, position)
    local[:, :2] += rng.normal(size=(len(rows), 2)) * resolution(modules.volume_id[rows])
    local[:, 2] = 0.0  # a measurement lies on the module's mid-plane
    return to_global(modules, rows, clip_to_module(modules, rows, local))


def noise(modules: Modules, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(module rows, positions) of `n` noise hits, uniform over the sensitive area."""
    half_width = modules.half_u.mean(axis=1)
    area = half_width * modules.half_v
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
