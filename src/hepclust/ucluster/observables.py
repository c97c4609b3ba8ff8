"""Jet observables of a JETS table beside ABCNet's inputs: the invariant mass of the
leading particles the network sees (the fair mass baseline), and the substructure
variables a physicist would tag W/Z/top with (the gradient-boosted tree baseline).

Both use each jet's particle lists (pT-ordered): a particle's four-momentum is
(pT cos phi, pT sin phi, pT sinh eta, E) with the listed energy.
"""

import awkward as ak
import numpy as np
import pyarrow as pa

from hepclust.features.jets import nsubjettiness
from hepclust.features.kinematics import momentum_records

# The anti-kT radius of the generated jets and of hls4ml's: N-subjettiness's R0.
JET_RADIUS = 0.8
OBSERVABLES = ("jet_mass", "multiplicity", "tau1", "tau2", "tau3", "tau21", "tau32", "pt_d")


def _momenta(jets: pa.Table, max_particles: int | None = None,
             massless: bool = False) -> ak.Array:
    """(jet, particle) records px, py, pz, E of each jet's first `max_particles` particles
    (all of them with None); `massless` takes E = |p|."""
    pt, eta, phi, energy = (ak.from_arrow(jets[f"part_{name}"]) for name in ("pt", "eta", "phi",
                                                                            "e"))
    if max_particles is not None:
        pt, eta, phi, energy = (x[:, :max_particles] for x in (pt, eta, phi, energy))
    pt, eta, phi, energy = (ak.values_astype(x, np.float64) for x in (pt, eta, phi, energy))
    if massless:
        energy = pt * np.cosh(eta)
    return momentum_records(pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta), energy)


def leading_mass(jets: pa.Table, max_particles: int) -> np.ndarray:
    """The invariant mass (GeV) of the four-momentum sum of each jet's first
    `max_particles` particles: the jet mass as far as the network's input carries it."""
    p = _momenta(jets, max_particles)
    px, py, pz, energy = (ak.to_numpy(ak.sum(p[name], axis=1)) for name in ("px", "py", "pz",
                                                                            "E"))
    return np.sqrt(np.maximum(energy**2 - px**2 - py**2 - pz**2, 0.0))


def jet_observables(jets: pa.Table) -> np.ndarray:
    """(jet, len(OBSERVABLES)) float32: the jet mass, the number of particles, tau_1 to
    tau_3 (beta = 1, exclusive-kT axes, R0 = JET_RADIUS), tau21, tau32 and
    pT_D = sqrt(sum pT^2) / sum pT, over all of each jet's particles. The N-subjettiness
    axes and distances take the particles as massless (rapidity = pseudorapidity)."""
    p = _momenta(jets, massless=True)
    tau1, tau2, tau3 = (nsubjettiness(p, n, JET_RADIUS) for n in (1, 2, 3))
    pt = ak.values_astype(ak.from_arrow(jets["part_pt"]), np.float64)
    pt_d = np.sqrt(ak.to_numpy(ak.sum(pt**2, axis=1))) / ak.to_numpy(ak.sum(pt, axis=1))
    columns = (jets["jet_mass"].to_numpy().astype(np.float64),
               ak.to_numpy(ak.num(pt, axis=1)).astype(np.float64), tau1, tau2, tau3,
               np.divide(tau2, tau1, out=np.zeros_like(tau1), where=tau1 > 0),
               np.divide(tau3, tau2, out=np.zeros_like(tau2), where=tau2 > 0), pt_d)
    return np.stack(columns, axis=1).astype(np.float32)
