"""How good an embedding is for the jet classes (W/Z/top by default): clustering accuracy,
KNN ROC curves, t-SNE.

All of it takes plain numpy arrays (embeddings, labels, masses), so it is the same for
the embeddings after pretraining and after the clustering phase. Labels are 0..n-1, the
index of the class in the analysis' ``classes`` (`hepclust.ucluster.features.select_classes`).
"""

from collections.abc import Sequence

import numpy as np
from sklearn.cluster import KMeans
from sklearn.manifold import TSNE
from sklearn.metrics import roc_auc_score, roc_curve
from sklearn.neighbors import KNeighborsClassifier

from hepclust.ucluster.metrics import cluster_accuracy

ROC_POINTS = 200


def kmeans(train_embedding: np.ndarray, clusters: int, seed: int) -> KMeans:
    """k-means on the training embeddings (its centres initialise UCluster's centroids)."""
    return KMeans(n_clusters=clusters, n_init=10, random_state=seed).fit(train_embedding)


def nearest_centroid(embedding: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    distance = ((embedding[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=-1)
    return distance.argmin(axis=1)


def knn_evaluation(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                   test_y: np.ndarray, neighbours: int = 30, *,
                   classes: Sequence[str]) -> dict:
    """A supervised KNN: accuracy, and one-vs-rest AUC and ROC curve for each class, keyed
    by its name (label i is `classes[i]`). A training set smaller than `neighbours` uses
    all of it."""
    train_x, test_x = np.asarray(train_x).reshape(len(train_x), -1), \
        np.asarray(test_x).reshape(len(test_x), -1)
    knn = KNeighborsClassifier(n_neighbors=min(neighbours, len(train_x))).fit(train_x, train_y)
    return probability_scores(test_y, knn.predict_proba(test_x), knn.classes_, classes)


def probability_scores(test_y: np.ndarray, probability: np.ndarray, codes: np.ndarray,
                       classes: Sequence[str]) -> dict:
    """Accuracy of the most probable class, and one-vs-rest AUC and ROC curve for each
    class (label i is `classes[i]`), of class probabilities (N, len(codes)) whose columns
    are the labels `codes`."""
    predicted = codes[probability.argmax(axis=1)]
    auc, roc = {}, {}
    for code, name in enumerate(classes):
        column = int(np.flatnonzero(codes == code)[0])
        truth = test_y == code
        auc[name] = float(roc_auc_score(truth, probability[:, column]))
        fpr, tpr, _ = roc_curve(truth, probability[:, column])
        keep = np.unique(np.linspace(0, len(fpr) - 1, ROC_POINTS).astype(int))
        roc[name] = {"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()}
    return {"accuracy": float(np.mean(predicted == test_y)), "auc": auc, "roc": roc}


def clustering_scores(labels: np.ndarray, clusters: np.ndarray) -> dict:
    """Hungarian-matched accuracy and the cluster sizes."""
    return {"accuracy": cluster_accuracy(labels, clusters),
            "cluster_sizes": np.bincount(clusters).tolist()}


def tsne(embedding: np.ndarray, seed: int) -> np.ndarray:
    """A 2D t-SNE picture of the embedding (identity if it is already 2D)."""
    if embedding.shape[1] <= 2:
        return np.pad(embedding, ((0, 0), (0, 2 - embedding.shape[1])))
    perplexity = min(30.0, (len(embedding) - 1) / 3)
    return TSNE(n_components=2, perplexity=perplexity, init="pca",
                random_state=seed).fit_transform(embedding)


# The paper's Table II, for the report.
PAPER = {"kmeans_pretrain_accuracy": 0.51, "ucluster_accuracy": 0.81,
         "knn_embedding_accuracy": 0.89, "supervised_accuracy": 0.92}
HEADLINE = (*PAPER, "knn_mass_accuracy", "knn_full_mass_accuracy", "gbdt_accuracy")
AUCS = ("knn_embedding_auc", "knn_mass_auc", "knn_full_mass_auc", "gbdt_auc")


def combine_seeds(per_seed: list[dict]) -> dict:
    """The first seed's metrics at the top level, every seed's under ``seeds``, and the
    mean and standard deviation of each headline number (AUCs per class) over seeds."""
    first = per_seed[0]
    classes = first["classes"]
    summary = {}
    for key in HEADLINE:
        values = np.array([m[key] for m in per_seed])
        summary[key] = {"mean": float(values.mean()), "std": float(values.std())}
    for key in AUCS:
        summary[key] = {name: {"mean": float(np.mean([m[key][name] for m in per_seed])),
                               "std": float(np.std([m[key][name] for m in per_seed]))}
                        for name in classes}
    summary["init_accuracy"] = {
        init: {"mean": float(np.mean([m["init_accuracy"][init] for m in per_seed])),
               "std": float(np.std([m["init_accuracy"][init] for m in per_seed]))}
        for init in first["init_accuracy"]}
    seeds = [{k: v for k, v in m.items() if k != "roc"} for m in per_seed]
    return {**first, "seeds": seeds, "over_seeds": summary, "paper": PAPER}
