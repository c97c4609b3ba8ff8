"""The figures of the UCluster anomaly search (PRD 103, 092007, Figs. 6-10)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import mplhep
import numpy as np

from hepclust.anomaly.fit import SQRT_S, Binning

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
    """Fig. 9: the nearest cluster's histogram (left) and `cluster`'s (right) with the
    background-only fit of the search's model (blue), and at the best mass of the scan the
    signal (red) and signal + background (magenta); the masked bins below the fitted range
    are shown open."""
    row = search["clusters"][cluster]
    edges = np.asarray(search["edges"])
    binning = Binning(edges, search["fit_low"], search["fit_high"])
    centres = (edges[1:] + edges[:-1]) / 2
    figure, axes = plt.subplots(1, 2, figsize=(12, 5))
    panels = ((axes[0], row["neighbour_counts"], f"cluster {row['neighbour']} (nearest)"),
              (axes[1], row["counts"], f"cluster {cluster} ({search['model']} model)"))
    for axis, counts, title in panels:
        counts = np.asarray(counts, float)
        for chosen, face, label in ((binning.mask, "k", "fitted"),
                                    (~binning.mask, "none", "masked")):
            shown = chosen & (counts > 0)
            axis.errorbar(centres[shown], counts[shown], yerr=np.sqrt(counts[shown]),
                          fmt="o", color="k", mfc=face, markersize=3, label=label)
        axis.axvline(search["fit_low"], color="grey", linestyle=":")
        axis.set(xlabel=r"$m_{jj}$ [GeV]", ylabel="events / bin", title=title)
    neighbour = row.get("neighbour_fit")
    background = row.get("background")
    if neighbour and None not in neighbour["parameters"].values():
        axes[0].stairs(_masked(binning, binning.expected(neighbour["parameters"])), edges,
                       color=BACKGROUND_COLOUR, linewidth=2, label="dijet fit (frozen shape)")
    if background and None not in (background["parameters"].get(k) for k in ("yield", "p1")):
        parameters = dict(background["parameters"])
        if "yield_neighbour" in parameters:
            axes[0].stairs(_masked(binning, binning.expected(
                {**parameters, "yield": parameters["yield_neighbour"], "b1": 0, "b2": 0})),
                edges, color=BACKGROUND_COLOUR, linewidth=2, label="joint fit")
        axes[1].stairs(_masked(binning, binning.expected(parameters)), edges,
                       color=BACKGROUND_COLOUR, linewidth=2,
                       label=f"background only, GOF p = {_number(background.get('gof_p'))}")
    signal = row.get("signal")
    if signal and signal["parameters"].get("signal") and row["mass"]:
        parameters = {**signal["parameters"], "mass": row["mass"],
                      "width": search["signal_width"]}
        axes[1].stairs(_masked(binning, parameters["signal"] * binning.signal(
            row["mass"], search["signal_width"])), edges, color=SIGNAL_COLOUR, linewidth=2,
            label=f"signal at {row['mass']:.0f} GeV")
        axes[1].stairs(_masked(binning, binning.expected(parameters)), edges, color="m",
                       linewidth=2, label="signal + background")
    axes[1].text(0.97, 0.55, f"local p = {_number(row['local_p'])}\n"
                 f"global p = {_number(row['global_p'])}\n"
                 f"fits {'valid' if row['valid'] else 'NOT valid'}",
                 transform=axes[1].transAxes, ha="right")
    for axis in axes:
        axis.set_yscale("log")
        axis.set_ylim(bottom=0.3)  # below one event the log scale shows only the model's tail
        axis.legend(fontsize="small")
    figure.suptitle(rf"dijet function with $\sqrt{{s}}$ = {SQRT_S / 1000:.0f} TeV")
    figure.tight_layout()
    return figure


def _masked(binning: Binning, counts: np.ndarray) -> np.ndarray:
    return np.where(binning.mask, counts, np.nan)


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
    """Global p-values of every valid cluster of the real clusterings (every K and seed),
    with and without the signal events."""
    with_signal = [row["global_p"] for o in metrics["fits"] for row in o["signal"]["clusters"]
                   if row["valid"]]
    without = [p for o in metrics["fits"] for p in o["background_only_p_values"]]
    bins = np.linspace(0, 1, 21)
    figure, axis = plt.subplots(figsize=(6.5, 5))
    axis.hist([without, with_signal], bins=bins, label=[
        f"background only ({len(without)} clusters)", f"with signal ({len(with_signal)})"],
        color=[BACKGROUND_COLOUR, SIGNAL_COLOUR], alpha=0.7)
    axis.axvline(0.05, color="grey", linestyle=":")
    fraction = metrics["bkg_only_observed_frac_p_below_0p05"]
    axis.set(xlabel="global p-value of a cluster (trials over masses)", ylabel="clusters",
             title=f"{metrics['background_model']} model; background only: "
                   f"{_number(fraction)} below 0.05")
    axis.legend()
    return figure


def plot_calibration(calibration: dict) -> plt.Figure:
    """P-value uniformity on independent background-only toys: for each model, the
    fraction of toys with global p below x against x (the diagonal where calibrated),
    and the local p-values at the best mass (no trials factor) for comparison."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 5))
    grid = np.logspace(-3, 0, 61)
    for colour, (model, result) in zip(("C0", "C1", "C2"), calibration["models"].items(),
                                       strict=False):
        for axis, key in ((axes[0], "global_p_values"), (axes[1], "local_p_values")):
            values = np.sort(np.asarray([p for p in result[key] if p is not None]))
            if not len(values):
                continue
            fraction = np.searchsorted(values, grid, side="right") / len(values)
            below = result["global_p"] if key == "global_p_values" else result["local_p"]
            axis.plot(grid, fraction, color=colour,
                      label=f"{model}: {_number(below['fraction'])} below 0.05 "
                            f"({len(values)} toys)")
    for axis, title in ((axes[0], "global p (trials over masses)"),
                        (axes[1], "local p at the best mass")):
        axis.plot(grid, grid, "k--", label="uniform")
        axis.axvline(0.05, color="grey", linestyle=":")
        axis.set(xscale="log", yscale="log", xlabel="p", ylabel="fraction of toys below p",
                 title=f"{title}, background-only toys", ylim=(1e-3, 1.05))
        axis.legend(fontsize="small")
    figure.tight_layout()
    return figure


def plot_injection(metrics: dict) -> plt.Figure:
    """The global significance of the whole search (best cluster, trials over masses and
    clusters) against the injected signal fraction, each seed and their mean."""
    figure, axis = plt.subplots(figsize=(6.5, 5))
    for seed, points in metrics["injection_by_seed"].items():
        axis.plot([100 * p["fraction"] for p in points],
                  [p["global_significance"] or 0.0 for p in points], "o:", color="grey",
                  label=f"seed {seed}")
    fractions = sorted(metrics["injection"], key=float)
    axis.plot([100 * float(f) for f in fractions],
              [metrics["injection"][f] or 0.0 for f in fractions], "s-", color="C3",
              label="mean over seeds")
    axis.set(xlabel="injected signal fraction [%]", ylabel="global significance Z",
             title=f"signal injection, K = {metrics['scan_clusters']} "
                   f"({metrics['background_model']} model)")
    axis.legend()
    return figure


def plot_fit_range(fit_range: dict) -> plt.Figure:
    """The training sample's inclusive m_jj and the chosen start of the fitted range."""
    edges, counts = np.asarray(fit_range["edges"]), np.asarray(fit_range["counts"])
    figure, axis = plt.subplots(figsize=(6.5, 5))
    axis.stairs(counts, edges, color="k", label="training sample, all events")
    axis.axvline(fit_range["low"], color="C3",
                 label=f"fit from {fit_range['low']:.0f} GeV"
                       + (" (chosen from the data)" if fit_range["chosen_from_data"] else ""))
    for candidate in fit_range.get("candidates", []):
        axis.annotate(f"p={candidate['gap_p']:.2g}", (candidate["low"], counts.max()),
                      rotation=90, fontsize="x-small", va="top")
    axis.set(yscale="log", xlabel=r"$m_{jj}$ [GeV]", ylabel="events / bin",
             title="fitted range: first start the turn-on test passes")
    axis.legend()
    return figure


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.3g}"
