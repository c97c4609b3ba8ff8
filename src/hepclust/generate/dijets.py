"""Dijet events like the LHC Olympics 2020 R&D set.

Background: Pythia 8 QCD 2 -> 2 at 13 TeV. Signal: W' (3.5 TeV) -> X (500 GeV) Y (100 GeV)
with X, Y -> q q. Pythia has no such states, so the W' gets a single decay channel into
two Higgs-sector states redefined with the X and Y masses (H0 as X, H+ as Y, which keeps
the charge), each given a decay into quarks. The channels use matrix-element mode 100
so Pythia keeps the widths we set, and a W' mass window cuts the off-shell tail that
parton luminosities would otherwise pull towards low masses. Events are kept when at
least one anti-kt R = 1.0 jet has pT > 1.3 TeV; particles are stored massless
(pT, eta, phi), as in the R&D set, and go through the same `dijet_table` as a real file.
"""


import awkward as ak
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from hepclust.features.dijets import dijet_table
from hepclust.features.kinematics import cylindrical
from hepclust.generate.pythia import GenerationStats, events, make_pythia, visible_final_state

LABELS = {"qcd": 0, "signal": 1}


def signal_settings(m_wprime: float = 3500.0, m_x: float = 500.0, m_y: float = 100.0,
                    window: float = 0.15) -> list[str]:
    """Pythia settings for W' -> X Y, X -> q qbar, Y -> q qbar' (Y charged)."""
    return [
        "NewGaugeBoson:ffbar2Wprime = on",
        f"34:m0 = {m_wprime}",
        f"34:mMin = {m_wprime * (1 - window)}",
        f"34:mMax = {m_wprime * (1 + window)}",
        "34:onMode = off",
        "34:addChannel = 1 1.0 100 35 37",
        f"35:m0 = {m_x}", "35:mWidth = 0.01", f"35:mMin = {m_x - 1}", f"35:mMax = {m_x + 1}",
        "35:onMode = off",
        "35:addChannel = 1 1.0 100 1 -1",
        "35:addChannel = 1 1.0 100 2 -2",
        "35:addChannel = 1 1.0 100 3 -3",
        f"37:m0 = {m_y}", "37:mWidth = 0.01", f"37:mMin = {m_y - 1}", f"37:mMax = {m_y + 1}",
        "37:onMode = off",
        "37:addChannel = 1 1.0 100 2 -1",
        "37:addChannel = 1 1.0 100 4 -3",
    ]


def generate_dijets(process: str, n_events: int, seed: int, *, pthat_min: float = 1100.0,
                    leading_pt_min: float = 1300.0, radius: float = 1.0,
                    max_particles: int = 700, eta_max: float = 4.0, mpi: bool = False,
                    batch_size: int = 100, progress: bool = True,
                    ) -> tuple[pa.Table, GenerationStats]:
    """Generate `n_events` selected dijet events of `process` ('qcd' or 'signal')."""
    if process == "qcd":
        settings = ["HardQCD:all = on", f"PhaseSpace:pTHatMin = {pthat_min}"]
    elif process == "signal":
        settings = signal_settings()
    else:
        raise ValueError(f"unknown dijet process {process!r}; expected one of {list(LABELS)}")
    pythia = make_pythia(settings, seed, mpi=mpi)
    stats = GenerationStats()
    tables = []
    stream = events(pythia)
    bar = tqdm(total=n_events, desc=f"{process} dijets", unit="event", disable=not progress)
    with stats.timed(), bar:
        while stats.selected < n_events:
            finals = [visible_final_state(next(stream), eta_max) for _ in range(batch_size)]
            stats.events += batch_size
            pt, eta, phi, _ = zip(*(cylindrical(f.px, f.py, f.pz, f.e) for f in finals),
                                  strict=True)
            counts = [len(p) for p in pt]
            particles = ak.zip({
                name: ak.unflatten(np.concatenate(values), counts)
                for name, values in (("pt", pt), ("eta", eta), ("phi", phi))
            })
            table = dijet_table(particles, np.full(batch_size, LABELS[process]),
                                radius=radius, max_particles=max_particles)
            leading = np.maximum(table.column("jet1_pt").to_numpy(),
                                 table.column("jet2_pt").to_numpy())
            table = table.filter(pa.array(leading > leading_pt_min))
            table = table.slice(0, n_events - stats.selected)
            tables.append(table)
            stats.selected += table.num_rows
            bar.update(table.num_rows)
    return pa.concat_tables(tables), stats
