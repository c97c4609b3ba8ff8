"""The particles of one tracking event: a pile of soft vertices, as in a TrackML event.

Each particle comes from one of `vertices` primary vertices spread as the LHC beam spot
(sigma_xy 12.5 um, sigma_z 55 mm). Its pT follows a falling power law
dN/dpT ~ pT^-pt_power from `pt_min` (mean about 0.45 GeV for the default 2.5), its
pseudorapidity is flat up to `eta_max`, phi is flat and the charge random. Most are
pions; a `lepton_fraction` are electrons or muons, half and half.
"""

from dataclasses import dataclass

import numpy as np

PION, ELECTRON, MUON = 211, 11, 13
MASS_GEV = {PION: 0.13957039, ELECTRON: 0.000510999, MUON: 0.1056583755}


@dataclass(frozen=True)
class GunSettings:
    particles: int = 1000
    vertices: int = 20
    pt_min: float = 0.15
    pt_max: float = 100.0
    pt_power: float = 2.5
    eta_max: float = 3.5
    lepton_fraction: float = 0.02
    sigma_xy_mm: float = 0.0125
    sigma_z_mm: float = 55.0


def sample_power_law(rng: np.random.Generator, n: int, low: float, high: float,
                     power: float) -> np.ndarray:
    """`n` values with density ~ x^-power on [low, high], by inverting the CDF."""
    u = rng.random(n)
    if np.isclose(power, 1.0):
        return low * (high / low) ** u
    a = 1.0 - power
    return (low**a + u * (high**a - low**a)) ** (1.0 / a)


def shoot(settings: GunSettings, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One event's particles: vertex index (from 1), PDG id, charge, mass, vertex, momentum."""
    n = settings.particles
    vertex_xyz = rng.normal(0.0, [settings.sigma_xy_mm, settings.sigma_xy_mm,
                                  settings.sigma_z_mm], size=(settings.vertices, 3))
    vertex = rng.integers(0, settings.vertices, n)
    pt = sample_power_law(rng, n, settings.pt_min, settings.pt_max, settings.pt_power)
    eta = rng.uniform(-settings.eta_max, settings.eta_max, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    charge = rng.choice(np.array([-1, 1]), n)
    kind = rng.random(n)
    species = np.where(kind < settings.lepton_fraction / 2, ELECTRON,
                       np.where(kind < settings.lepton_fraction, MUON, PION))
    # PDG sign: positive pions and negative leptons are the particles.
    pdg = np.where(species == PION, charge, -charge) * species
    return {
        "vertex": vertex + 1,
        "pdg": pdg,
        "q": charge,
        "m": np.vectorize(MASS_GEV.get)(species),
        "vx": vertex_xyz[vertex, 0],
        "vy": vertex_xyz[vertex, 1],
        "vz": vertex_xyz[vertex, 2],
        "px": pt * np.cos(phi),
        "py": pt * np.sin(phi),
        "pz": pt * np.sinh(eta),
    }
