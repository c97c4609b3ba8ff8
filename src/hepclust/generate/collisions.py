"""The particles of one TrackML-like event from Pythia 8: a hard process plus pile-up.

As in the TrackML challenge, an event is one hard interaction (ttbar by default) overlaid
with `pileup` minimum-bias interactions (SoftQCD, inelastic), each at its own vertex drawn
from the beam spot: Gaussian, sigma_xy 15 um and sigma_z 5.5 mm by default (the spread of
the accuracy-phase events' vertices). Pythia decays the short-lived hadrons itself and
keeps their decay vertices, so the daughters of K0S, Lambda and other hyperons start
displaced, as secondaries; Fatras then adds its own (photon conversions, bremsstrahlung).

What goes to the detector simulation: final-state charged particles with pT above
`pt_min` and |eta| below `eta_max`, and photons above the same pT (for conversions in the
material). A `density` below 1 keeps a random fraction of those, as the thesis's "10% of
tracks". Pythia's random generator is reseeded for each event, so an event depends only
on its seed.
"""

from dataclasses import dataclass

import numpy as np
import pythia8mc

from hepclust.generate.pythia import make_pythia, shard_seed

HARD_PROCESSES = {
    "ttbar": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
    "none": (),
}
MINIMUM_BIAS = ("SoftQCD:inelastic = on",)
SPEED = ("Check:event = off",)  # no consistency check of every event record: 10% faster
PHOTON = 22
# Production points beyond this (mm) lie outside the detector: nothing to simulate.
WORLD_R_MM, WORLD_Z_MM = 1000.0, 2950.0
# Per particle: charge, vertex (mm, relative to its interaction) and momentum (GeV).
_COLUMNS = ("interaction", "pid", "charge", "mass", "x", "y", "z", "px", "py", "pz", "mother")


@dataclass(frozen=True)
class CollisionSettings:
    hard_process: str = "ttbar"
    pileup: int = 200
    pt_min: float = 0.15
    eta_max: float = 4.0
    photons: bool = True
    sigma_xy_mm: float = 0.015
    sigma_z_mm: float = 5.5

    def __post_init__(self):
        if self.hard_process not in HARD_PROCESSES:
            raise ValueError(f"hard_process must be one of {sorted(HARD_PROCESSES)}, "
                             f"not {self.hard_process!r}")


class CollisionGenerator:
    """Two Pythia instances, hard and minimum-bias, set up once; `event` gives one
    event's particles in the format of `particle_gun.shoot`."""

    def __init__(self, settings: CollisionSettings):
        self.settings = settings
        hard = HARD_PROCESSES[settings.hard_process]
        self._hard = make_pythia((*hard, *SPEED), 1, mpi=True) if hard else None
        self._soft = make_pythia((*MINIMUM_BIAS, *SPEED), 2, mpi=True)

    def event(self, seed: int, density: float,
              rng: np.random.Generator) -> dict[str, np.ndarray]:
        """One event, Pythia seeded with `seed`, keeping a fraction `density` of the
        particles: vertex index (from 1), secondary-vertex index (0: primary), PDG id,
        charge, mass, production point and momentum of each kept particle."""
        for offset, pythia in enumerate((self._hard, self._soft)):
            if pythia is not None:
                pythia.rndm.init(shard_seed(seed, offset))
        generators = [self._hard] if self._hard else []
        generators += [self._soft] * self.settings.pileup
        vertices = rng.normal(0.0, [self.settings.sigma_xy_mm, self.settings.sigma_xy_mm,
                                    self.settings.sigma_z_mm], size=(len(generators), 3))
        rows = []
        for number, pythia in enumerate(generators, start=1):
            _generate(pythia)
            rows += self.select(pythia.event, rng.random(pythia.event.size()), density,
                                number)
        return _place(np.array(rows, dtype=np.float64).reshape(-1, len(_COLUMNS)), vertices)

    def select(self, event, draws: np.ndarray, density: float,
               number: int = 1) -> list[tuple]:
        """The particles of Pythia event `number` that go to the detector, as `_COLUMNS`
        (the vertex in mm): final, charged or photons, above pt_min and within eta_max,
        kept with probability `density` (`draws`: one uniform number per record entry).
        The cuts come first, so the few kept particles are all that is read out."""
        s = self.settings
        rows = []
        for i in np.flatnonzero(draws < density):
            p = event[int(i)]
            if (p.isFinal() and (p.isCharged() or (
                    s.photons and p.id() == PHOTON)) and p.pT() > s.pt_min
                    and abs(p.eta()) < s.eta_max):
                rows.append((number, p.id(), p.charge(), p.m(), p.xProd(), p.yProd(),
                             p.zProd(), p.px(), p.py(), p.pz(), p.mother1()))
        return rows


def _generate(pythia: pythia8mc.Pythia, max_failures: int = 100) -> None:
    for _ in range(max_failures):
        if pythia.next():
            return
    raise RuntimeError(f"Pythia failed {max_failures} events in a row")


def _place(particles: np.ndarray, vertices: np.ndarray) -> dict[str, np.ndarray]:
    """Particles (`_COLUMNS`) moved to their interaction's vertex, without those made
    outside the detector; a production point more than 1 um from its interaction is a
    secondary vertex, numbered per mother within the interaction."""
    number, (x, y, z) = particles[:, 0].astype(np.int64), particles[:, 4:7].T
    displaced = np.sqrt(x * x + y * y + z * z) > 1e-3
    secondary = np.zeros(len(particles), dtype=np.int64)
    if displaced.any():
        pairs, index = np.unique(particles[displaced][:, [0, 10]], axis=0, return_inverse=True)
        # Rank of each (interaction, mother) pair within its interaction, from 1.
        first = np.searchsorted(pairs[:, 0], pairs[:, 0])
        secondary[displaced] = (np.arange(len(pairs)) - first + 1)[index.ravel()]
    vertex = vertices[number - 1]
    placed = {
        "vertex": number,
        "secondary": secondary,
        "pdg": particles[:, 1].astype(np.int64),
        "q": np.rint(particles[:, 2]).astype(np.int64),
        "m": particles[:, 3],
        "vx": x + vertex[:, 0],
        "vy": y + vertex[:, 1],
        "vz": z + vertex[:, 2],
        "px": particles[:, 7],
        "py": particles[:, 8],
        "pz": particles[:, 9],
    }
    inside = (np.hypot(x, y) < WORLD_R_MM) & (np.abs(z) < WORLD_Z_MM)
    return {key: values[inside] for key, values in placed.items()}
