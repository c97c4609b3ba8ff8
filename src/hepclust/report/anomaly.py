"""The figures of the UCluster anomaly search (PRD 103, 092007, Figs. 6-10)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplhep
import numpy as np

from hepclust.anomaly.fit import SQRT_S, expected_counts

SIGNAL_COLOUR, BACKGROUND_COLOUR = "C3", "C0"
MJJ_BINS = np.linspace(1500, 7000, 56)


def plot_embedding(assigned: dict[str, np.ndarray], events: int, seed: int) -> plt.Figure:
    """Fig. 6: the evaluation events' embedding (its first two coordinates), coloured by
    truth and by cluster."""
    shown = np.random.default_rng(seed).permutation(len(assigned["label"]))[:events]
    points, label = assigned["embedding"][shown], assigned["label"][shown]
    clusters = assigned["cluster"][shown]
    figure, axes = plt.subplots(1, 2, figsize=(11, 5))
    for code, name, colour in ((0, "QCD", BACKGROUND_COLOUR), (1, "signal", SIGNAL_COLOUR)):
        chosen = label == code
        axes[0].scatter(points[chosen, 0], points[chosen, 1], s=4 if code == 0 else 10,
                        color=colour, label=f"{name} ({chosen.sum()})")
    for cluster in np.unique(clusters):
        chosen = clusters == cluster
        axes[1].scatter(points[chosen, 0], points[chosen, 1], s=4, label=f"cluster {cluster}")
    for axis, title in zip(axes, ("true label", "UCluster cluster"), strict=True):
        axis.set(title=f"{title} ({len(shown)} events)", xlabel="embedding 1",
                 ylabel="embedding 2")
        axis.legend(markerscale=3, fontsize="small")
    figure.tight_layout()
    return figure


def plot_max_sb(metrics: dict) -> plt.Figure:
    """Fig. 7 left: the best cluster's S/B against the number of clusters, every seed and
    their mean and standard deviation, with the inclusive S/B."""
    figure, axis = plt.subplots(figsize=(6.5, 5))
    ks = sorted(metrics["max_sb_over_seeds"], key=int)
    x = np.array([int(k) for k in ks])
    for k in ks:
        values = [v for v in metrics["max_sb_over_seeds"][k]["values"] if v is not None]
        axis.scatter([int(k)] * len(values), values, color="grey", s=12, zorder=1)
    mean = [metrics["max_sb_over_seeds"][k]["mean"] for k in ks]
    std = [metrics["max_sb_over_seeds"][k]["std"] for k in ks]
    axis.errorbar(x, mean, yerr=std, fmt="o-", color="C0", capsize=4, zorder=2,
                  label="best cluster, mean and std over seeds")
    axis.axhline(metrics["inclusive_sb"], color="C1", linestyle="--",
                 label=f"inclusive ({metrics['inclusive_sb']:.2%})")
    axis.set(xlabel="number of clusters K", ylabel="maximum S/B",
             title="S/B of the best cluster (evaluation sample)")
    axis.legend()
    return figure


def plot_significance(metrics: dict) -> plt.Figure:
    """Fig. 7 right: S/sqrt(B) of the best cluster against the training sample size, at
    the scan's K, with the inclusive S/sqrt(B) of the evaluation sample."""
    scan = metrics["significance_vs_train_events"]
    events = [point["train_events"] for point in scan]
    figure, axis = plt.subplots(figsize=(6.5, 5))
    axis.errorbar(events, [p["max_significance"]["mean"] for p in scan],
                  yerr=[p["max_significance"]["std"] for p in scan], fmt="o-", capsize=4,
                  label=f"best of K = {metrics['scan_clusters']} clusters")
    axis.plot(events, [p["inclusive_significance"] for p in scan], "s--", color="C1",
              label="before clustering")
    axis.set(xscale="log", xlabel="training events (evaluation sample scaled alike)",
             ylabel=r"$S/\sqrt{B}$", title="Approximate significance")
    axis.legend()
    return figure


def _stack(axis, mjj: np.ndarray, label: np.ndarray, bins: np.ndarray, title: str) -> None:
    stacks = [np.histogram(mjj[label == code], bins=bins)[0] for code in (0, 1)]
    mplhep.histplot(stacks, bins, ax=axis, stack=True, histtype="fill", alpha=0.8,
                    color=[BACKGROUND_COLOUR, SIGNAL_COLOUR],
                    label=[f"QCD ({(label == 0).sum()})", f"signal ({(label == 1).sum()})"])
    axis.set(xlabel=r"$m_{jj}$ [GeV]", ylabel="events", title=title)
    axis.legend()


def plot_best_cluster_mjj(assigned: dict[str, np.ndarray], best: int) -> plt.Figure:
    """Fig. 8: m_jj of all evaluation events and of the cluster with the highest S/B."""
    bins = MJJ_BINS
    figure, axes = plt.subplots(1, 2, figsize=(12, 5))
    _stack(axes[0], assigned["mjj"], assigned["label"], bins, "all events")
    chosen = assigned["cluster"] == best
    k = int(assigned["cluster"].max()) + 1
    _stack(axes[1], assigned["mjj"][chosen], assigned["label"][chosen], bins,
           f"cluster {best}, highest S/B of K = {k}")
    axes[0].set_yscale("log")
    figure.tight_layout()
    return figure


def plot_fit(search: dict, cluster: int) -> plt.Figure:
    """Fig. 9: the dijet fit of the cluster nearest `cluster` (left) and, with its shape
    frozen, the background (blue), the Gaussian signal (red) and their sum (magenta) in
    `cluster` (right)."""
    row = search["clusters"][cluster]
    edges = np.asarray(search["edges"])
    centres = (edges[1:] + edges[:-1]) / 2
    figure, axes = plt.subplots(1, 2, figsize=(12, 5))
    shape = row["background_shape"]
    panels = ((axes[0], row["neighbour_counts"], f"cluster {row['neighbour']} (nearest)"),
              (axes[1], row["counts"], f"cluster {cluster}"))
    for axis, counts, title in panels:
        counts = np.asarray(counts, float)
        filled = counts > 0
        axis.errorbar(centres[filled], counts[filled], yerr=np.sqrt(counts[filled]), fmt="ko",
                      markersize=3, label="evaluation events")
        axis.set(xlabel=r"$m_{jj}$ [GeV]", ylabel="events / bin", title=title)
    if None not in shape["parameters"].values():
        axes[0].stairs(expected_counts(edges, shape["parameters"]), edges,
                       color=BACKGROUND_COLOUR, linewidth=2,
                       label=f"dijet function, $\\chi^2$/ndf = {_number(shape['chi2_ndf'])}")
    test = row.get("test")
    if test and None not in test["signal"]["parameters"].values():
        parameters = test["signal"]["parameters"]
        background = {name: parameters[name] for name in ("p0", "p1", "p2", "p3")}
        signal = {**background, "p0": 0.0}
        signal.update((name, parameters[name]) for name in ("signal_yield", "mass", "width"))
        axes[1].stairs(expected_counts(edges, background), edges, color=BACKGROUND_COLOUR,
                       linewidth=2, label="background (shape frozen)")
        axes[1].stairs(expected_counts(edges, signal), edges, color=SIGNAL_COLOUR,
                       linewidth=2, label=f"signal at {parameters['mass']:.0f} GeV")
        axes[1].stairs(expected_counts(edges, parameters), edges, color="m", linewidth=2,
                       label="signal + background")
        where = "mass from the test sample" if row["mass_from_test_sample"] \
            else "no mass from the test sample: range middle"
        axes[1].text(0.97, 0.6, f"local p = {_number(row['p_value'])}\n"
                     f"Z = {_number(row['significance'])}\n"
                     f"fits {'valid' if row['valid'] else 'NOT valid'}\n{where}",
                     transform=axes[1].transAxes, ha="right")
    for axis in axes:
        axis.set_yscale("log")
        axis.set_ylim(bottom=0.3)  # below one event the log scale shows only the model's tail
        axis.legend(fontsize="small")
    figure.suptitle(rf"dijet function with $\sqrt{{s}}$ = {SQRT_S / 1000:.0f} TeV")
    figure.tight_layout()
    return figure


def plot_global_features(assigned: dict[str, np.ndarray]) -> plt.Figure:
    """Fig. 10: the four global features, stacked by cluster."""
    raw = assigned["global_raw"]
    clusters = assigned["cluster"]
    k = int(clusters.max()) + 1
    panels = ((np.exp(raw[:, 0]), np.linspace(0, 1000, 51), r"$m_{J1}$ [GeV]"),
              (np.exp(raw[:, 1]), np.linspace(0, 1000, 51), r"$m_{J2}$ [GeV]"),
              (raw[:, 2], np.linspace(0, 1, 26), r"$\tau_{21}^{J1}$"),
              (raw[:, 3], np.linspace(0, 1, 26), r"$\tau_{21}^{J2}$"))
    figure, axes = plt.subplots(2, 2, figsize=(11, 8))
    for axis, (values, bins, title) in zip(axes.flat, panels, strict=True):
        stacks = [np.histogram(values[clusters == c], bins=bins)[0] for c in range(k)]
        mplhep.histplot(stacks, bins, ax=axis, stack=True, histtype="fill",
                        label=[f"cluster {c}" for c in range(k)])
        axis.set(xlabel=title, ylabel="events")
    axes[0, 0].legend(fontsize="small")
    figure.suptitle(f"global features stacked by cluster (K = {k})")
    figure.tight_layout()
    return figure


def plot_p_values(metrics: dict) -> plt.Figure:
    """Local p-values of every valid cluster fit, with and without the signal events."""
    with_signal = [row["p_value"] for o in metrics["fits"] for row in o["signal"]["clusters"]
                   if row["valid"] and row["p_value"] is not None]
    without = [p for o in metrics["fits"] for p in o["background_only_p_values"]]
    bins = np.linspace(0, 1, 21)
    figure, axis = plt.subplots(figsize=(6.5, 5))
    axis.hist([without, with_signal], bins=bins, label=[
        f"background only ({len(without)} clusters)", f"with signal ({len(with_signal)})"],
        color=[BACKGROUND_COLOUR, SIGNAL_COLOUR], alpha=0.7)
    axis.axvline(0.05, color="grey", linestyle=":")
    fraction = metrics["bkg_only_frac_p_below_0p05"]
    axis.set(xlabel="local p-value (background only)", ylabel="clusters",
             title=f"background only: {_number(fraction)} of clusters below 0.05")
    axis.legend()
    return figure


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"
