"""Boosted W, Z and top jets like the hls4ml LHC jet dataset.

Pythia 8 at 13 TeV makes W+jet, Z+jet and ttbar with hadronic W/Z decays and a hard
process pT window around 1 TeV. Visible final-state particles are clustered with
anti-kt (R = 0.8); the leading jet is kept when 800 < pT < 1200 GeV and it lies within
R of the boson or of a top quark (truth matching: in W+jet events the recoiling parton
is the leading jet about half the time). `contained` records whether every quark of the
decay (q q' for W/Z, b q q' for top) is within R of the jet axis.
"""

from dataclasses import dataclass, field

import awkward as ak
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from hepclust.features.jets import cluster_jets, constituents_of
from hepclust.features.kinematics import cylindrical, delta_r
from hepclust.generate.pythia import (
    FinalState,
    GenerationStats,
    events,
    make_pythia,
    visible_final_state,
)
from hepclust.io.schema import JET_LABELS, JETS

HADRONIC_W = ["24:onMode = off", "24:onIfAny = 1 2 3 4 5"]
PROCESSES: dict[str, dict] = {
    "W": {
        "resonance": 24,
        "settings": ["WeakBosonAndParton:qqbar2Wg = on", "WeakBosonAndParton:qg2Wq = on",
                     *HADRONIC_W],
    },
    "Z": {
        "resonance": 23,
        "settings": ["WeakBosonAndParton:qqbar2gmZg = on", "WeakBosonAndParton:qg2gmZq = on",
                     "WeakZ0:gmZmode = 2", "23:onMode = off", "23:onIfAny = 1 2 3 4 5"],
    },
    "top": {
        "resonance": 6,
        "settings": ["Top:gg2ttbar = on", "Top:qqbar2ttbar = on", *HADRONIC_W],
    },
}


@dataclass
class Resonance:
    """A hard-process W, Z or top at its last copy, and the quarks it decays into."""

    eta: float
    phi: float
    quark_eta: list[float] = field(default_factory=list)
    quark_phi: list[float] = field(default_factory=list)


def decay_quarks(event, index: int) -> list:
    """The quarks a resonance ends in, following W daughters of a top."""
    last = event[event[index].iBotCopyId()]
    quarks = []
    for daughter in last.daughterList():
        particle = event[daughter]
        if particle.idAbs() == 24:
            quarks += decay_quarks(event, daughter)
        elif 1 <= particle.idAbs() <= 5:
            quarks.append(particle)
    return quarks


def find_resonances(event, pdg_id: int) -> list[Resonance]:
    found = []
    for particle in event:
        if particle.statusAbs() == 22 and particle.idAbs() == pdg_id:
            last = event[particle.iBotCopyId()]
            quarks = decay_quarks(event, particle.index())
            found.append(Resonance(last.eta(), last.phi(),
                                   [q.eta() for q in quarks], [q.phi() for q in quarks]))
    return found


def generate_boosted_jets(process: str, n_jets: int, seed: int, *, pthat_min: float,
                          pthat_max: float, pt_min: float = 800.0, pt_max: float = 1200.0,
                          radius: float = 0.8, max_constituents: int = 100,
                          eta_max: float = 4.0, mpi: bool = False, batch_size: int = 100,
                          progress: bool = True) -> tuple[pa.Table, GenerationStats]:
    """Generate `n_jets` truth-matched jets of `process` ('W', 'Z' or 'top')."""
    spec = PROCESSES[process]
    pythia = make_pythia([*spec["settings"], f"PhaseSpace:pTHatMin = {pthat_min}",
                          f"PhaseSpace:pTHatMax = {pthat_max}"], seed, mpi=mpi)
    stats = GenerationStats()
    tables = []
    stream = events(pythia)
    bar = tqdm(total=n_jets, desc=f"{process} jets", unit="jet", disable=not progress)
    with stats.timed(), bar:
        while stats.selected < n_jets:
            finals, truths = [], []
            for event in (next(stream) for _ in range(batch_size)):
                finals.append(visible_final_state(event, eta_max))
                truths.append(find_resonances(event, spec["resonance"]))
            stats.events += batch_size
            table = select_jets(finals, truths, JET_LABELS[process], pt_min=pt_min,
                                pt_max=pt_max, radius=radius,
                                max_constituents=max_constituents)
            table = table.slice(0, n_jets - stats.selected)
            tables.append(table)
            stats.selected += table.num_rows
            bar.update(table.num_rows)
    return pa.concat_tables(tables), stats


def select_jets(finals: list[FinalState], truths: list[list[Resonance]], label: int, *,
                pt_min: float, pt_max: float, radius: float,
                max_constituents: int) -> pa.Table:
    """Cluster a batch of events and keep each event's leading jet when it passes the pT
    window and is matched to a resonance. Returns a table in the `JETS` schema."""
    particles = FinalState.batch(finals)
    jets, index = cluster_jets(particles, radius)
    has_jet = ak.to_numpy(ak.num(jets, axis=1) > 0)
    leading = jets[has_jet][:, 0]
    pt, eta, phi, mass = cylindrical(*(ak.to_numpy(leading[f]) for f in ("px", "py", "pz", "E")))
    matched, contained = np.zeros(len(pt), bool), np.zeros(len(pt), bool)
    for row, truth in enumerate(t for t, keep in zip(truths, has_jet, strict=True) if keep):
        distances = [delta_r(eta[row], phi[row], r.eta, r.phi) for r in truth]
        if distances and min(distances) < radius:
            nearest = truth[int(np.argmin(distances))]
            matched[row] = True
            contained[row] = bool(np.all(
                delta_r(eta[row], phi[row], np.array(nearest.quark_eta),
                        np.array(nearest.quark_phi)) < radius))
    keep = matched & (pt > pt_min) & (pt < pt_max)
    constituents = constituents_of(particles[has_jet], index[has_jet][:, :1])[keep]
    c_pt, c_eta, c_phi, _ = (
        ak.unflatten(v, ak.num(constituents))
        for v in cylindrical(*(ak.to_numpy(ak.flatten(constituents[f]))
                               for f in ("px", "py", "pz", "E")))
    )
    order = ak.argsort(c_pt, axis=1, ascending=False)[:, :max_constituents]
    lists = {"pt": c_pt[order], "eta": c_eta[order], "phi": c_phi[order],
             "e": constituents.E[order], "pid": constituents.pid[order],
             "charge": constituents.charge[order]}
    n_keep = int(keep.sum())
    columns = {
        "jet_pt": pt[keep], "jet_eta": eta[keep], "jet_phi": phi[keep],
        "jet_mass": mass[keep], "jet_e": ak.to_numpy(leading.E)[keep],
        "n_constituents": ak.to_numpy(ak.num(constituents, axis=1)),
        "contained": contained[keep], "label": np.full(n_keep, label),
        **{f"part_{k}": ak.to_arrow(v, extensionarray=False) for k, v in lists.items()},
    }
    return pa.table(columns).cast(JETS)
