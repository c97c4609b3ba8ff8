"""The dijet table of the anomaly-detection task, from the particles of each event.

As for the LHC Olympics R&D set: anti-kt jets (R = 1.0 by default) of the event's
particles; the two leading-pT jets form the dijet, then they are ordered by mass
(jet1 the heavier), as UCluster's inputs are; tau21 with exclusive-kt axes; m_jj the
invariant mass of the two. Events with fewer than two jets are dropped.
"""

import awkward as ak
import numpy as np
import pyarrow as pa

from hepclust.features.jets import cluster_jets, constituents_of, tau21
from hepclust.features.kinematics import cartesian, cylindrical, momentum_records
from hepclust.io.schema import DIJETS

MIN_JET_PT = 20.0  # GeV; keeps soft fragments out of the jet list


def drop_reason(radius: float) -> str:
    """Why `dijet_table` leaves an event out."""
    return f"fewer than two anti-kt R = {radius:g} jets with pT > {MIN_JET_PT:g} GeV"


def dijet_table(particles: ak.Array, labels: np.ndarray, radius: float = 1.0,
                max_particles: int = 700) -> pa.Table:
    """`particles`: records (pt, eta, phi) per event, padding removed, optional `mass`.
    Returns a table in the `DIJETS` schema, one row per event with two jets (the others
    are left out, for `drop_reason`)."""
    mass = particles.mass if "mass" in ak.fields(particles) else 0.0
    px, py, pz, energy = cartesian(particles.pt, particles.eta, particles.phi, mass)
    momenta = momentum_records(px, py, pz, energy)
    jets, index = cluster_jets(momenta, radius, min_pt=MIN_JET_PT)
    keep = ak.to_numpy(ak.num(jets, axis=1) >= 2)
    if not keep.any():
        return DIJETS.empty_table()
    jets, index, momenta = jets[keep][:, :2], index[keep][:, :2], momenta[keep]
    particles, labels = particles[keep], np.asarray(labels)[keep]

    jet_px, jet_py, jet_pz, jet_e = (ak.to_numpy(jets[f]) for f in ("px", "py", "pz", "E"))
    pt, eta, phi, jet_mass = cylindrical(jet_px, jet_py, jet_pz, jet_e)
    tau = tau21(constituents_of(momenta, index), radius).reshape(-1, 2)

    heavier_first = np.argsort(-jet_mass, axis=1, kind="stable")
    columns = {}
    for slot, name in enumerate(("jet1", "jet2")):
        pick = heavier_first[:, slot]
        rows = np.arange(len(pick))
        for var, values in (("pt", pt), ("eta", eta), ("phi", phi), ("mass", jet_mass),
                            ("tau21", tau)):
            columns[f"{name}_{var}"] = values[rows, pick]
    _, _, _, mjj = cylindrical(*(v.sum(axis=1) for v in (jet_px, jet_py, jet_pz, jet_e)))
    columns["mjj"] = mjj
    columns["label"] = labels
    order = ak.argsort(particles.pt, axis=1, ascending=False)
    leading = particles[order][:, :max_particles]
    for var in ("pt", "eta", "phi"):
        columns[f"part_{var}"] = ak.to_arrow(ak.values_astype(leading[var], np.float32),
                                             extensionarray=False)
    return pa.table(columns).cast(DIJETS)
