"""What the report shows of the tracking events: one event's hits, summary numbers, and
their comparison with real TrackML events.

`TRACKML_REFERENCE` holds figures measured on real TrackML files (docs/data.md says on
which): an accuracy-phase event's particle list, and a throughput-phase test event with
hits, cells and truth for the noise.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hepclust.io.trackml_cells import VOLUMES

COLORS = {"pixel": "tab:blue", "short strips": "tab:orange", "long strips": "tab:green"}
SECONDARY_MM = 1.0  # a particle made this far from the beam line comes from a secondary vertex
PT_RANGES = ((0.0, 0.3), (0.3, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, np.inf))
TRACKML_REFERENCE = {
    "vertex_z_std_mm": 5.5,
    "particle_pt_median": 0.40,
    "frac_particles_pt_above_0p5gev": 0.39,
    "frac_particles_pt_above_1gev": 0.13,
    "frac_particles_pt_above_2gev": 0.029,
    "frac_particles_pt_below_0p3gev": 0.34,
    "weight_share_pt_below_0p3gev": 0.22,
    "frac_particles_secondary": 0.18,
    "frac_hits_secondary": 0.10,
    "noise_fraction": 0.15,
    "noise_fraction_pixel": 0.055,
    "frac_particles_fewer_than_4_hits": 0.12,
}


def _event(table: pa.Table, event_id: int) -> dict[str, np.ndarray]:
    chosen = table.filter(pc.equal(table["event_id"], event_id))
    return {name: chosen[name].to_numpy() for name in chosen.column_names}


def plot_tracking_event(hits: pa.Table, particles: pa.Table) -> plt.Figure:
    """The first event: hits in x-y and r-z by subdetector (noise grey), the particles' pT
    spectrum and their hit counts."""
    event_id = int(pc.min(hits["event_id"]).as_py())
    event, truth = _event(hits, event_id), _event(particles, event_id)
    figure, axes = plt.subplots(2, 2, figsize=(11, 9))
    noise = event["particle_id"] == 0
    radius = np.hypot(event["x"], event["y"])
    axes[0, 0].scatter(event["x"][noise], event["y"][noise], s=0.2, c="grey", label="noise")
    axes[0, 1].scatter(event["z"][noise], radius[noise], s=0.2, c="grey")
    for part, volumes in VOLUMES.items():
        chosen = np.isin(event["volume_id"], volumes) & ~noise
        axes[0, 0].scatter(event["x"][chosen], event["y"][chosen], s=0.3, c=COLORS[part],
                           label=part)
        axes[0, 1].scatter(event["z"][chosen], radius[chosen], s=0.3, c=COLORS[part])
    axes[0, 0].set(xlabel="x [mm]", ylabel="y [mm]", aspect="equal",
                   title=f"event {event_id}: {len(noise)} hits")
    axes[0, 0].legend(markerscale=20, loc="upper right", fontsize="small")
    axes[0, 1].set(xlabel="z [mm]", ylabel="r [mm]")
    pt = np.hypot(truth["px"], truth["py"])
    axes[1, 0].hist(pt, bins=np.geomspace(0.05, 100, 40), histtype="step")
    axes[1, 0].set(xscale="log", yscale="log", xlabel="particle pT [GeV]", ylabel="particles",
                   title=f"mean pT {pt.mean():.2f} GeV")
    axes[1, 1].hist(truth["nhits"], bins=np.arange(0, 31) - 0.5, histtype="step")
    axes[1, 1].set(xlabel="hits per particle", ylabel="particles")
    figure.tight_layout()
    return figure


def _pt_label(low: float, high: float) -> str:
    return f"{low:g}-{high:g}" if np.isfinite(high) else f">{low:g}"


def hit_particle_pt(hits: pa.Table, particles: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """(pT, production radius) of each hit's particle; NaN for noise and unknown ones."""
    keys = particles["event_id"].to_numpy() * (1 << 44) + particles["particle_id"].to_numpy()
    order = np.argsort(keys)
    wanted = hits["event_id"].to_numpy() * (1 << 44) + hits["particle_id"].to_numpy()
    slot = np.minimum(np.searchsorted(keys[order], wanted), len(keys) - 1)
    found = keys[order][slot] == wanted
    row = order[slot]
    pt = np.hypot(particles["px"].to_numpy(), particles["py"].to_numpy())[row]
    radius = np.hypot(particles["vx"].to_numpy(), particles["vy"].to_numpy())[row]
    return np.where(found, pt, np.nan), np.where(found, radius, np.nan)


def validation(hits: pa.Table, particles: pa.Table) -> dict:
    """The figures that `TRACKML_REFERENCE` gives for real events, on these events."""
    pt = np.hypot(particles["px"].to_numpy(), particles["py"].to_numpy())
    radius = np.hypot(particles["vx"].to_numpy(), particles["vy"].to_numpy())
    vz = particles["vz"].to_numpy()[radius < SECONDARY_MM]
    nhits = particles["nhits"].to_numpy()
    volume, weight = hits["volume_id"].to_numpy(), hits["weight"].to_numpy()
    noise = hits["particle_id"].to_numpy() == 0
    hit_pt, hit_radius = hit_particle_pt(hits, particles)
    cells = hits["cell_count"].to_numpy() if "cell_count" in hits.column_names else None
    pixel = np.isin(volume, VOLUMES["pixel"])
    summary = {
        "vertex_z_std_mm": float(vz.std()),
        "vertex_z_quantiles_16_84_mm": [float(q) for q in np.quantile(vz, [0.16, 0.84])],
        "particle_pt_median": float(np.median(pt)),
        "frac_particles_pt_above_0p5gev": float(np.mean(pt > 0.5)),
        "frac_particles_pt_above_1gev": float(np.mean(pt > 1.0)),
        "frac_particles_pt_above_2gev": float(np.mean(pt > 2.0)),
        "frac_particles_pt_below_0p3gev": float(np.mean(pt < 0.3)),
        "weight_share_by_pt": {
            _pt_label(low, high): float(weight[(hit_pt >= low) & (hit_pt < high)].sum()
                                        / weight.sum())
            for low, high in PT_RANGES},
        "frac_particles_secondary": float(np.mean(radius > SECONDARY_MM)),
        "frac_hits_secondary": float(np.mean(hit_radius[~noise] > SECONDARY_MM)),
        "noise_fraction": float(np.mean(noise)),
        "noise_fraction_by_part": {part: float(np.mean(noise[np.isin(volume, vols)]))
                                   for part, vols in VOLUMES.items()},
        "frac_particles_fewer_than_4_hits": float(np.mean(nhits < 4)),
        "hits_per_particle_histogram": np.bincount(np.minimum(nhits, 30), minlength=31).tolist(),
        "frac_hits_with_cells": float(np.mean(cells > 0)) if cells is not None else 0.0,
        "frac_pixel_hits_with_cells": (float(np.mean(cells[pixel] > 0))
                                       if cells is not None else 0.0),
        "cells_per_hit_by_part": ({part: float(cells[np.isin(volume, vols)].mean())
                                   for part, vols in VOLUMES.items()}
                                  if cells is not None else {}),
    }
    summary["weight_share_pt_below_0p3gev"] = summary["weight_share_by_pt"]["0-0.3"]
    summary["noise_fraction_pixel"] = summary["noise_fraction_by_part"]["pixel"]
    return summary


def plot_validation(summary: dict, hits: pa.Table, particles: pa.Table) -> plt.Figure:
    """The generated events beside real TrackML's figures (`TRACKML_REFERENCE`)."""
    reference = TRACKML_REFERENCE
    figure, axes = plt.subplots(2, 3, figsize=(15, 9))
    pt = np.hypot(particles["px"].to_numpy(), particles["py"].to_numpy())
    ax = axes[0, 0]
    ax.hist(pt, bins=np.geomspace(0.05, 100, 40), histtype="step", density=True,
            label="generated")
    ax.set(xscale="log", yscale="log", xlabel="particle pT [GeV]", ylabel="density",
           title="pT spectrum")
    ax = axes[0, 1]
    names = ["pT>0.5", "pT>1", "pT>2", "pT<0.3", "secondary", "<4 hits"]
    keys = ["frac_particles_pt_above_0p5gev", "frac_particles_pt_above_1gev",
            "frac_particles_pt_above_2gev", "frac_particles_pt_below_0p3gev",
            "frac_particles_secondary", "frac_particles_fewer_than_4_hits"]
    _bars(ax, names, [summary[k] for k in keys], [reference[k] for k in keys])
    ax.set(ylabel="fraction of particles", title="particles")
    ax = axes[0, 2]
    radius = np.hypot(particles["vx"].to_numpy(), particles["vy"].to_numpy())
    vz = particles["vz"].to_numpy()[radius < SECONDARY_MM]
    ax.hist(vz, bins=np.linspace(-25, 25, 51), histtype="step", density=True,
            label="generated")
    grid = np.linspace(-25, 25, 200)
    sigma = reference["vertex_z_std_mm"]
    ax.plot(grid, np.exp(-grid**2 / (2 * sigma**2)) / (sigma * np.sqrt(2 * np.pi)), "k--",
            label=f"TrackML (sigma {sigma} mm)")
    ax.set(xlabel="vertex z [mm]", ylabel="density", title="primary vertices")
    ax.legend(fontsize="small")
    ax = axes[1, 0]
    shares = summary["weight_share_by_pt"]
    _bars(ax, list(shares), list(shares.values()),
          [reference["weight_share_pt_below_0p3gev"]] + [np.nan] * (len(shares) - 1))
    ax.set(xlabel="particle pT [GeV]", ylabel="share of the TrackML score weight",
           title="score weight by pT")
    ax = axes[1, 1]
    counts = np.asarray(summary["hits_per_particle_histogram"])
    ax.step(np.arange(len(counts)), counts / counts.sum(), where="mid", label="generated")
    ax.set(xlabel="hits per particle (30: 30 or more)", ylabel="fraction of particles",
           title="hits per particle")
    ax = axes[1, 2]
    parts = list(summary["noise_fraction_by_part"])
    _bars(ax, [f"noise\n{p}" for p in parts], list(summary["noise_fraction_by_part"].values()),
          [reference["noise_fraction_pixel"], np.nan, np.nan])
    if summary["cells_per_hit_by_part"]:
        twin = ax.twinx()
        twin.plot([f"noise\n{p}" for p in parts],
                  list(summary["cells_per_hit_by_part"].values()), "ko-", label="cells per hit")
        twin.set(ylabel="cells per hit (black)")
    ax.set(ylabel="noise fraction", title=f"noise ({summary['noise_fraction']:.1%} of hits; "
                                          f"TrackML {reference['noise_fraction']:.0%})")
    figure.tight_layout()
    return figure


def _bars(ax, names: list[str], generated: list[float], real: list[float]) -> None:
    x = np.arange(len(names))
    ax.bar(x - 0.2, generated, width=0.4, label="generated")
    ax.bar(x + 0.2, real, width=0.4, label="real TrackML")
    ax.set_xticks(x, names, fontsize="small")
    ax.legend(fontsize="small")


def summarize_tracking(hits: pa.Table, particles: pa.Table) -> dict:
    """Per-event averages that say whether the events look like TrackML's, and the
    figures of `validation` beside TrackML's own."""
    n_events = len(pc.unique(hits["event_id"]))
    particle_id, volume = hits["particle_id"].to_numpy(), hits["volume_id"].to_numpy()
    pt = np.hypot(particles["px"].to_numpy(), particles["py"].to_numpy())
    nhits = particles["nhits"].to_numpy()
    weight_sums = pc.sum(hits["weight"]).as_py() / n_events
    return {
        **validation(hits, particles),
        "trackml_reference": TRACKML_REFERENCE,
        "events": n_events,
        "hits_per_event": hits.num_rows / n_events,
        "particles_per_event": particles.num_rows / n_events,
        "noise_fraction": float(np.mean(particle_id == 0)),
        "hit_fraction_by_subdetector": {part: float(np.isin(volume, vols).mean())
                                        for part, vols in VOLUMES.items()},
        "particle_pt_mean": float(pt.mean()),
        "particle_pt_fraction_above_1gev": float(np.mean(pt > 1.0)),
        "hits_per_particle_with_hits": float(nhits[nhits > 0].mean()),
        "reconstructable_fraction": float(np.mean(nhits >= 4)),
        "mean_weight_sum_per_event": weight_sums,
    }
