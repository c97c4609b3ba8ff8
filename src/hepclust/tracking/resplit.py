"""Re-splitting components too large to be one track: the connected components of the
refined graph, each holding more than `max_hits` hits divided again into the components
of its edges above a stricter threshold, threshold after threshold, until every cluster
is small enough or the thresholds run out.

A track crosses each layer about once, so a component of many more hits than layers is
several tracks that fake edges have joined; its weakest edges are the likeliest fakes.
This is Choma's iterative re-clustering (thesis, section 4.3: clusters that look wrong
are clustered again) with the component size as the sign of a wrong cluster and the
refinement's edge probabilities as the order in which edges are cut.
"""

from collections.abc import Sequence

import numpy as np
import torch

from hepclust.tracking.baselines import connected_components
from hepclust.tracking.hit_features import as_numpy


def resplit_components(edge_index: torch.Tensor | np.ndarray,
                       probability: torch.Tensor | np.ndarray, num_hits: int,
                       thresholds: Sequence[float], max_hits: int) -> np.ndarray:
    """Cluster labels (num_hits,) int64 from 0: the components of all of `edge_index`
    (2, E), those larger than `max_hits` re-split with the edges of `probability` (E,)
    above each of `thresholds` in turn (increasing)."""
    edges, p = as_numpy(edge_index), as_numpy(probability)
    if list(thresholds) != sorted(thresholds):
        raise ValueError(f"thresholds must increase, not {list(thresholds)}")
    labels = connected_components(edges, num_hits)
    for threshold in thresholds:
        ids, size = np.unique(labels, return_counts=True)
        large = np.isin(labels, ids[size > max_hits])
        if not large.any():
            break
        inside = large[edges[0]] & (labels[edges[0]] == labels[edges[1]])
        divided = connected_components(edges[:, inside & (p > threshold)], num_hits)
        labels = np.where(large, labels.max() + 1 + divided, labels)
        labels = np.unique(labels, return_inverse=True)[1]
    return labels.astype(np.int64)
