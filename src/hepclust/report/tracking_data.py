"""What the report shows of the tracking events: one event's hits, and summary numbers."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hepclust.generate.digitize import VOLUMES

COLORS = {"pixel": "tab:blue", "short strips": "tab:orange", "long strips": "tab:green"}


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


def summarize_tracking(hits: pa.Table, particles: pa.Table) -> dict:
    """Per-event averages that say whether the events look like TrackML's."""
    n_events = len(pc.unique(hits["event_id"]))
    particle_id, volume = hits["particle_id"].to_numpy(), hits["volume_id"].to_numpy()
    pt = np.hypot(particles["px"].to_numpy(), particles["py"].to_numpy())
    nhits = particles["nhits"].to_numpy()
    weight_sums = pc.sum(hits["weight"]).as_py() / n_events
    return {
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
