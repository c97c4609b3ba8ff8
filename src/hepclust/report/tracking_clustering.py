"""The figures of the clustering GNN on the tracking events (Choma's Tables 3.1-3.2, the
tracking rates in pT and eta, the scaling with the number of hits, one event's tracks)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import NullFormatter

THESIS_SCORES = {"clustering GNN (thesis)": 0.91, "DBSCAN (thesis)": 0.26}
RATE_LABELS = {"efficiency": "efficiency", "fake_rate": "fake rate",
               "duplicate_rate": "duplicate rate"}


def plot_scores(metrics: dict) -> plt.Figure:
    """TrackML score of Split/Stop and of every alternative (Table 3.2), and the size and
    quality of each graph stage (Table 3.1)."""
    figure, (left, right) = plt.subplots(1, 2, figsize=(13, 5))
    methods = metrics["table_3_2"]
    names = sorted(methods, key=lambda n: methods[n]["score"])
    scores = [methods[n]["score"] for n in names]
    spreads = [methods[n]["score_std"] for n in names]
    colors = ["tab:red" if n == "split_stop" else "tab:blue" for n in names]
    left.barh(names, scores, xerr=spreads, color=colors)
    for label, value in THESIS_SCORES.items():
        left.axvline(value, linestyle=":", color="grey")
        left.text(value, len(names) - 0.5, label, rotation=90, va="top", fontsize="small")
    left.set(xlabel=f"TrackML score (mean over {metrics['test_events']} held-out events)",
             xlim=(0, 1), title="Table 3.2: track finding")
    stages = [s for s in ("all_pairs", "embedding", "filtered", "refined", "classified")
              if s in metrics["table_3_1"]]
    table = metrics["table_3_1"]
    x = np.arange(len(stages))
    for offset, key in ((-0.2, "purity"), (0.2, "recall")):
        right.bar(x + offset, [table[s][key] or 0.0 for s in stages], width=0.4, label=key)
    for index, stage in enumerate(stages):
        right.text(index, 1.02, f"{table[stage]['edges_per_event']:.3g}\nedges/event",
                   ha="center", fontsize="small")
    right.set(xticks=x, xticklabels=stages, ylim=(0, 1.15), yscale="linear",
              title="Table 3.1: graphs on the held-out events")
    right.legend(loc="center right")
    return figure


def plot_rates(metrics: dict) -> plt.Figure:
    """Efficiency, fake and duplicate rates of Split/Stop in bins of pT and of eta."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for axis, name, label in ((axes[0], "pt", "pT [GeV]"), (axes[1], "eta", "eta")):
        binned = metrics["binned"][name]
        edges = np.array([np.nan if e is None else e for e in binned["edges"]], dtype=float)
        if np.isnan(edges[-1]):
            edges[-1] = 2 * edges[-2] - edges[-3]  # draw the open last bin as wide
        centres = 0.5 * (edges[:-1] + edges[1:])
        for rate, text in RATE_LABELS.items():
            values = np.array([np.nan if v is None else v for v in binned[rate]], dtype=float)
            axis.step(centres, values, where="mid", marker="o", label=text)
        axis.set(xlabel=label, ylim=(0, 1.05))
        if name == "pt":
            axis.set_xscale("log")
            axis.xaxis.set_minor_formatter(NullFormatter())
    axes[0].set_ylabel("rate")
    axes[0].legend()
    figure.suptitle("Split/Stop tracks on the held-out events")
    return figure


def plot_scaling(bench: dict) -> plt.Figure:
    """Inference seconds and peak memory per event against its hits, with the fitted power
    law and n log n through the smallest event for reference."""
    hits = np.asarray(bench["hits"], dtype=float)
    figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    for axis, values, label, exponent in (
            (left, np.asarray(bench["seconds"]), "seconds per event", bench["exponent"]),
            (right, np.maximum(np.asarray(bench["memory_mb"]), 1e-3), "peak memory [MB]",
             bench["memory_exponent"])):
        axis.loglog(hits, values, "o", label="measured")
        span = np.linspace(hits.min(), hits.max(), 50)
        smallest = np.argmin(hits)
        nlogn = span * np.log(span) / (hits[smallest] * np.log(hits[smallest]))
        axis.loglog(span, values[smallest] * nlogn, ":", color="grey", label="n log n")
        if exponent is not None:
            fit = np.polyfit(np.log(hits), np.log(values), 1)
            axis.loglog(span, np.exp(np.polyval(fit, np.log(span))), "-",
                        label=f"fit: hits^{exponent:.2f}")
        axis.set(xlabel="hits per event", ylabel=label)
        axis.legend()
    figure.suptitle(f"clustering GNN inference ({bench['device']}, "
                    f"{bench['threads']} thread(s))")
    return figure


def plot_event_tracks(hits: pd.DataFrame, submission: pd.DataFrame,
                      largest: int = 40) -> plt.Figure:
    """One held-out event: its hits in x-y and r-z, the `largest` found tracks in colour,
    the truth's largest particles beside them."""
    merged = hits.merge(submission[["hit_id", "track_id"]], on="hit_id")
    figure, axes = plt.subplots(2, 2, figsize=(11, 10))
    radius = np.hypot(merged["x"], merged["y"])
    for row, column, title in ((0, "track_id", "found tracks"), (1, "particle_id", "truth")):
        labels = merged[column].to_numpy()
        counted = labels[labels != 0] if column == "particle_id" else labels
        ids, sizes = np.unique(counted, return_counts=True)
        shown = ids[np.argsort(-sizes, kind="stable")[:largest]]
        for axis, (u, v) in zip(axes[row], ((merged["x"], merged["y"]), (merged["z"], radius)),
                                strict=True):
            axis.scatter(u, v, s=0.2, c="lightgrey")
            for index, label in enumerate(shown):
                chosen = labels == label
                axis.scatter(u[chosen], v[chosen], s=3, color=f"C{index % 10}")
        axes[row, 0].set(xlabel="x [mm]", ylabel="y [mm]", aspect="equal",
                         title=f"{title}: the {len(shown)} largest")
        axes[row, 1].set(xlabel="z [mm]", ylabel="r [mm]", title=title)
    return figure
