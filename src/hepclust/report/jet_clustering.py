"""The figures of the UCluster jets analysis (the paper's Figs. 3 and 4, Table II)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from hepclust.ucluster.evaluation import HEADLINE, PAPER, tsne


def plot_roc(metrics: dict) -> plt.Figure:
    """One-vs-rest ROC curves of the KNN on the embedding (solid), on the mass of the same
    particles (dashed) and on the full jet mass (dotted)."""
    figure, axis = plt.subplots(figsize=(6, 5))
    for index, name in enumerate(metrics["classes"]):
        color = f"C{index}"
        for source, style in (("embedding", "-"), ("mass", "--"), ("full_mass", ":")):
            if source not in metrics["roc"]:
                continue
            roc = metrics["roc"][source][name]
            auc = metrics[f"knn_{source}_auc"][name]
            axis.plot(roc["fpr"], roc["tpr"], style, color=color,
                      label=f"{name}, {source.replace('_', ' ')} (AUC {auc:.3f})")
    axis.plot([0, 1], [0, 1], "-.", color="grey")
    axis.set(xlabel="false positive rate", ylabel="true positive rate",
             title="KNN (k = 30): UCluster embedding vs mass")
    axis.legend(fontsize="small")
    return figure


def plot_tsne(pictures: dict[str, np.ndarray], seed: int, classes: list[str]) -> plt.Figure:
    """t-SNE of test embeddings before and after the clustering phase, by truth (label i
    is `classes[i]`) and by cluster."""
    figure, axes = plt.subplots(2, 2, figsize=(10, 9))
    for row, stage in enumerate(("before", "after")):
        points = tsne(pictures[stage], seed)
        for column, (key, names) in enumerate((("label", classes), (f"{stage}_cluster", None))):
            axis = axes[row, column]
            values = pictures[key]
            for value in np.unique(values):
                chosen = values == value
                label = names[int(value)] if names else f"cluster {int(value)}"
                axis.scatter(points[chosen, 0], points[chosen, 1], s=4, label=label)
            which = "true class" if names else "cluster"
            when = "after pretraining" if stage == "before" else "after clustering"
            axis.set(title=f"{when}: {which}", xticks=[], yticks=[])
            axis.legend(markerscale=3, fontsize="small")
    figure.tight_layout()
    return figure


def plot_accuracy(metrics: dict) -> plt.Figure:
    """The headline accuracies of every seed, with the paper's values."""
    figure, axis = plt.subplots(figsize=(8, 4.5))
    positions = np.arange(len(HEADLINE))
    for seed_metrics in metrics["seeds"]:
        axis.scatter(positions, [seed_metrics[key] for key in HEADLINE], color="C0", s=20)
    means = [metrics["over_seeds"][key]["mean"] for key in HEADLINE]
    axis.scatter(positions, means, marker="_", s=600, color="C0", label="ours (mean, seeds)")
    paper = [PAPER.get(key, np.nan) for key in HEADLINE]
    axis.scatter(positions, paper, marker="*", s=120, color="C3", label="paper")
    axis.set_xticks(positions, [key.removesuffix("_accuracy").replace("_", "\n")
                                for key in HEADLINE])
    axis.set(ylabel="accuracy on the test split", ylim=(0, 1))
    axis.legend()
    figure.tight_layout()
    return figure
