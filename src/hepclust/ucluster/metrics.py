"""Clustering accuracy with the Hungarian matching of clusters to classes (Kuhn 1955), as
UCluster reports it (Table II).

Each cluster is matched to at most one class and each class to at most one cluster so that
the number of samples whose cluster is matched to their own class is largest; the accuracy
is that number over all samples. With more clusters than classes the extra clusters stay
unmatched (their samples count as wrong); with fewer, some classes do.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment


def _contingency(true, predicted) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    true, predicted = np.asarray(true).ravel(), np.asarray(predicted).ravel()
    if len(true) != len(predicted) or len(true) == 0:
        raise ValueError(f"need equally many true and predicted labels, at least one; got "
                         f"{len(true)} and {len(predicted)}")
    classes, class_index = np.unique(true, return_inverse=True)
    clusters, cluster_index = np.unique(predicted, return_inverse=True)
    counts = np.zeros((len(clusters), len(classes)), np.int64)
    np.add.at(counts, (cluster_index, class_index), 1)
    return counts, clusters, classes


def matching(true, predicted) -> dict[int, int]:
    """The Hungarian matching, cluster -> class; unmatched clusters are absent."""
    counts, clusters, classes = _contingency(true, predicted)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {int(clusters[r]): int(classes[c]) for r, c in zip(rows, cols, strict=True)}


def cluster_accuracy(true, predicted) -> float:
    """Fraction of samples whose cluster is matched to their class by `matching`."""
    counts, _, _ = _contingency(true, predicted)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / counts.sum())
