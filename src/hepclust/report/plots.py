"""The figures of the report; each function returns a matplotlib Figure."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplhep
import numpy as np
import pyarrow as pa

from hepclust.io.parquet import atomic_path
from hepclust.io.schema import JET_LABELS

NOMINAL_MASSES = {"W": 80.4, "Z": 91.2, "top": 172.5}


def save_figure(figure: plt.Figure, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format=Path(path).suffix.lstrip(".") or "png", dpi=120,
                       bbox_inches="tight")
    plt.close(figure)


def plot_jet_mass(jets: pa.Table) -> plt.Figure:
    """Normalised jet-mass distribution of each class, with the nominal masses marked."""
    mass, label = jets.column("jet_mass").to_numpy(), jets.column("label").to_numpy()
    bins = np.linspace(0, 300, 61)
    figure, axis = plt.subplots(figsize=(7, 5))
    for name, code in JET_LABELS.items():
        selected = mass[label == code]
        if selected.size == 0:
            continue
        counts, _ = np.histogram(selected, bins=bins, density=True)
        mplhep.histplot(counts, bins, ax=axis, label=f"{name} ({selected.size} jets)")
        if name in NOMINAL_MASSES:
            axis.axvline(NOMINAL_MASSES[name], color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("jet mass [GeV]")
    axis.set_ylabel("normalised entries / 5 GeV")
    axis.legend()
    return figure


def plot_mjj(dijets: pa.Table) -> plt.Figure:
    """m_jj of background and signal, stacked, on a log scale."""
    mjj, label = dijets.column("mjj").to_numpy(), dijets.column("label").to_numpy()
    bins = np.linspace(1500, 7000, 56)
    stacks = [np.histogram(mjj[label == code], bins=bins)[0] for code in (0, 1)]
    figure, axis = plt.subplots(figsize=(7, 5))
    mplhep.histplot(stacks, bins, ax=axis, stack=True, histtype="fill", alpha=0.8,
                    label=[f"QCD ({(label == 0).sum()})", f"W' signal ({(label == 1).sum()})"])
    axis.set_yscale("log")
    axis.set_xlabel(r"$m_{jj}$ [GeV]")
    axis.set_ylabel("events / 100 GeV")
    axis.legend()
    return figure


def plot_dijet_jets(dijets: pa.Table) -> plt.Figure:
    """Masses and tau21 of the two jets, background and signal normalised separately."""
    label = dijets.column("label").to_numpy()
    panels = [("jet1_mass", np.linspace(0, 1000, 51), r"$m_{J1}$ [GeV]"),
              ("jet2_mass", np.linspace(0, 1000, 51), r"$m_{J2}$ [GeV]"),
              ("jet1_tau21", np.linspace(0, 1, 26), r"$\tau_{21}^{J1}$"),
              ("jet2_tau21", np.linspace(0, 1, 26), r"$\tau_{21}^{J2}$")]
    figure, axes = plt.subplots(2, 2, figsize=(10, 8))
    for axis, (column, bins, title) in zip(axes.flat, panels, strict=True):
        values = dijets.column(column).to_numpy()
        for code, name in ((0, "QCD"), (1, "signal")):
            if (label == code).any():
                counts, _ = np.histogram(values[label == code], bins=bins, density=True)
                mplhep.histplot(counts, bins, ax=axis, label=name)
        axis.set_xlabel(title)
        axis.legend()
    figure.tight_layout()
    return figure
