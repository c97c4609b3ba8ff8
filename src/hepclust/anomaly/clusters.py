"""How much signal each UCluster cluster holds (PRD 103, 092007, Sec. VI, Figs. 7 and 8) and
which cluster serves as another's background model (Sec. VI.A: the nearest in embedding
space).

Labels are 1 for signal and 0 for background. Ratios with no background, S/B and S/sqrt(B)
at B = 0, are infinite for S > 0 and 0 for S = 0 in `significance`; in the JSON-ready
`signal_to_background` rows they are None, and `best_cluster` ranks a background-free
cluster with signal above every other.
"""

import numpy as np


def significance(signal, background):
    """The approximate significance S / sqrt(B); inf where B = 0 < S, 0 where S = B = 0."""
    signal, background = np.asarray(signal, np.float64), np.asarray(background, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.where(signal > 0, signal / np.sqrt(background), 0.0)
    return float(value) if value.ndim == 0 else value


def signal_to_background(labels, clusters, k: int) -> list[dict]:
    """One row per cluster 0..k-1: {"cluster", "signal", "background", "ratio" (S/B),
    "significance" (S/sqrt(B))}, the ratios None where B = 0."""
    labels, clusters = np.asarray(labels), np.asarray(clusters)
    if labels.shape != clusters.shape or labels.ndim != 1:
        raise ValueError(f"need one label per cluster index, got shapes {labels.shape} and "
                         f"{clusters.shape}")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 1 (signal) or 0 (background)")
    if len(clusters) and (clusters.min() < 0 or clusters.max() >= k):
        raise ValueError(f"cluster indices must lie in [0, {k}), got {clusters.min()} to "
                         f"{clusters.max()}")
    signal = np.bincount(clusters[labels == 1], minlength=k)
    background = np.bincount(clusters[labels == 0], minlength=k)
    return [{"cluster": cluster, "signal": s, "background": b, "ratio": s / b if b else None,
             "significance": significance(s, b) if b else None}
            for cluster, (s, b) in enumerate(zip(signal.tolist(), background.tolist(),
                                                 strict=True))]


def best_cluster(rows: list[dict], min_events: int = 1) -> int:
    """The cluster of `signal_to_background`'s rows with the highest S/B among those with at
    least `min_events` events (more signal wins a tie; B = 0 < S counts as infinite)."""
    eligible = [row for row in rows if row["signal"] + row["background"] >= max(min_events, 1)]
    if not eligible:
        raise ValueError(f"no cluster has {min_events} or more events")

    def rank(row: dict) -> tuple[float, int]:
        ratio = row["signal"] / row["background"] if row["background"] else np.inf
        return ratio, row["signal"]

    return max(eligible, key=rank)["cluster"]


def nearest_other_cluster(centroids) -> np.ndarray:
    """For each centroid (K, E), the index of the nearest other one (Euclidean; the lower
    index on a tie), (K,) int64."""
    centroids = np.asarray(centroids, np.float64)
    if centroids.ndim != 2 or len(centroids) < 2:
        raise ValueError(f"need at least two centroids as a (K, E) array, got shape "
                         f"{centroids.shape}")
    distance = np.linalg.norm(centroids[:, None, :] - centroids[None, :, :], axis=-1)
    np.fill_diagonal(distance, np.inf)
    return distance.argmin(axis=1).astype(np.int64)
