r"""UCluster's two losses (PRD 103, 092007, Sec. III), combined as
:math:`L = L_\mathrm{focal} + \beta L_\mathrm{cluster}` by the training loop.

Focal loss (Lin et al., arXiv:1708.02002), Eq. (1), with p the softmax probability of the
true class of sample j:

.. math:: L_\mathrm{focal} = -\frac{1}{N} \sum_j (1 - p_j)^\gamma \log p_j

Deep-k-means clustering loss (Fard et al., arXiv:1806.10069), Eqs. (2) and (3), for
embeddings f_j and centroids mu_k; the soft assignment uses the distance, the loss its
square:

.. math::
    L_\mathrm{cluster} = \frac{1}{N} \sum_j \sum_k \|f_j - \mu_k\|^2 \pi_{jk}, \qquad
    \pi_{jk} = \mathrm{softmax}_k(-\alpha \|f_j - \mu_k\|).

Gradients flow through pi as well, to the network and to the centroids, which are a
trainable parameter updated by the same optimiser (`hepclust.ucluster.phases`).
"""

import torch
from torch.nn import functional as F


def focal_loss(logits: torch.Tensor, target: torch.Tensor, gamma: float = 2.0,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """Multi-class focal loss, the mean over samples (or over the real particles of `mask`).

    Shapes: logits (N, C) with target (N,), or per particle logits (B, P, C) with target
    and mask (B, P); targets of masked-out entries are ignored, whatever they hold.
    gamma = 0 gives the cross-entropy.
    """
    if mask is not None:
        mask = mask.bool()
        target = target.masked_fill(~mask, 0)
    log_p = F.log_softmax(logits, dim=-1).gather(-1, target.long().unsqueeze(-1)).squeeze(-1)
    loss = -((1 - log_p.exp()) ** gamma) * log_p
    if mask is None:
        return loss.mean()
    return loss.masked_fill(~mask, 0.0).sum() / mask.sum().clamp(min=1)


def centroid_distances(embedding: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Euclidean distances (N, K) of embeddings (N, E) to centroids (K, E)."""
    # The norm's gradient at a zero distance is taken as 0 (a point on its centroid).
    return torch.linalg.vector_norm(embedding.unsqueeze(1) - centroids.unsqueeze(0), dim=-1)


def cluster_loss(embedding: torch.Tensor, centroids: torch.Tensor,
                 alpha: float) -> torch.Tensor:
    """L_cluster of Eq. (2) for embeddings (N, E) and centroids (K, E)."""
    distance = centroid_distances(embedding, centroids)
    weights = torch.softmax(-alpha * distance, dim=1)
    return (distance.square() * weights).sum(dim=1).mean()
