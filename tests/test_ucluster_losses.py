import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from hepclust.ucluster.losses import cluster_loss, focal_loss
from hepclust.ucluster.metrics import cluster_accuracy, matching


def test_focal_loss_by_hand():
    # True-class probabilities 0.5 and 0.8: (1 - p)^2 weighs the easy second sample down.
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8]]))
    target = torch.tensor([0, 2])
    expected = (0.25 * math.log(2) - 0.04 * math.log(0.8)) / 2
    assert focal_loss(logits, target).item() == pytest.approx(expected, rel=1e-6)
    assert focal_loss(logits + 3.0, target).item() == pytest.approx(expected, rel=1e-6)
    expected_gamma_1 = (0.5 * math.log(2) - 0.2 * math.log(0.8)) / 2
    assert focal_loss(logits, target, gamma=1.0).item() == pytest.approx(expected_gamma_1,
                                                                          rel=1e-6)


def test_focal_loss_with_gamma_zero_is_the_cross_entropy():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(16, 5, generator=generator, requires_grad=True)
    target = torch.randint(0, 5, (16,), generator=generator)
    ours, reference = focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target)
    torch.testing.assert_close(ours, reference)
    (ours_grad,) = torch.autograd.grad(ours, logits)
    (reference_grad,) = torch.autograd.grad(reference, logits)
    torch.testing.assert_close(ours_grad, reference_grad)


def test_masked_per_particle_focal_loss_ignores_padding():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(2, 4, 3, generator=generator)
    target = torch.randint(0, 3, (2, 4), generator=generator)
    mask = torch.tensor([[True, True, False, False], [True, True, True, False]])
    expected = focal_loss(logits[mask], target[mask])

    logits = logits.masked_fill(~mask.unsqueeze(-1), 1e4).requires_grad_(True)
    target = target.masked_fill(~mask, 99)  # not even a valid class
    loss = focal_loss(logits, target, mask=mask)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert (logits.grad[~mask] == 0).all()
    assert (logits.grad[mask] != 0).any()


def three_points():
    """Points 0, 1, 3 on a line, centroids at 0 and 2, alpha = ln(3) / 2: the soft
    assignments are (3/4, 1/4), (1/2, 1/2) and (1/4, 3/4)."""
    embedding = torch.tensor([[0.0], [1.0], [3.0]], requires_grad=True)
    centroids = torch.tensor([[0.0], [2.0]], requires_grad=True)
    return embedding, centroids, math.log(3) / 2


def test_cluster_loss_and_its_gradient_by_hand():
    embedding, centroids, alpha = three_points()
    # Squared distances (0, 4), (1, 1), (9, 1) weighted by pi: (1 + 1 + 3) / 3.
    loss = cluster_loss(embedding, centroids, alpha)
    assert loss.item() == pytest.approx(5 / 3, rel=1e-6)

    # dL/dmu_k = 1/N sum_j (mu_k - f_j) pi_jk [2 - alpha (d_jk^2 - sum_k' pi_jk' d_jk'^2) / d_jk]
    # and dL/df_j the same with the opposite sign, summed over k; the point on its centroid
    # contributes 0 for that centroid.
    loss.backward()
    expected_centroids = [(-1 - 1.5 * (1 - alpha)) / 3, (0.5 - 2.25 * alpha) / 3]
    expected_embedding = [-(1 - 0.75 * alpha) / 3, 0.0, 1.0]
    assert centroids.grad.ravel().tolist() == pytest.approx(expected_centroids, rel=1e-5)
    assert embedding.grad.ravel().tolist() == pytest.approx(expected_embedding, abs=1e-6)


def test_cluster_loss_is_the_nearest_centroid_distance_at_large_alpha():
    generator = torch.Generator().manual_seed(2)
    embedding, centroids = torch.randn(50, 4, generator=generator), torch.randn(3, 4,
                                                                                generator=generator)
    nearest = torch.cdist(embedding, centroids).min(dim=1).values.square().mean()
    torch.testing.assert_close(cluster_loss(embedding, centroids, alpha=1e4), nearest)


def test_accuracy_of_a_permuted_labelling_is_one():
    true = np.array([0, 0, 1, 1, 2, 2, 2])
    predicted = np.array([2, 2, 0, 0, 1, 1, 1])
    assert cluster_accuracy(true, predicted) == 1.0
    assert matching(true, predicted) == {2: 0, 0: 1, 1: 2}


def test_accuracy_of_partial_labellings():
    # Clusters 1 -> class 0 (2 right) and 0 -> class 1 (3 right) beat the alternatives.
    true, predicted = [0, 0, 0, 1, 1, 1], [1, 1, 0, 0, 0, 0]
    assert cluster_accuracy(true, predicted) == pytest.approx(5 / 6)
    assert matching(true, predicted) == {1: 0, 0: 1}
    # More clusters than classes: cluster 1 stays unmatched.
    true, predicted = [0, 0, 0, 0, 1, 1], [0, 0, 1, 2, 2, 2]
    assert cluster_accuracy(true, predicted) == pytest.approx(4 / 6)
    assert matching(true, predicted) == {0: 0, 2: 1}
    # Fewer clusters than classes, and labels that are not 0..n-1.
    true, predicted = [3, 7, 9, 9], [5, 5, 8, 8]
    assert cluster_accuracy(true, predicted) == pytest.approx(3 / 4)
    assert matching(true, predicted)[8] == 9


def test_accuracy_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="equally many"):
        cluster_accuracy([0, 1], [0])
