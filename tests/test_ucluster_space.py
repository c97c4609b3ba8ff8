"""The clustering space beside the embedding (`phases.ClusterSpace`): its standardisation,
the joint phase's centroids, loss and assignment in it, and the default path (the embedding
alone) unchanged."""

import numpy as np
import pytest
import torch
from torch import nn

from hepclust.ucluster import evaluation, phases
from hepclust.ucluster.training import Schedule
from toy_networks import LinearNetwork


def _quadrant_task():
    """Two blobs in the features (x0 = +-3, the classes), and an observable g that splits
    each blob in two halves (g = +-3) which the network never reads."""
    torch.manual_seed(0)
    model = LinearNetwork()
    n = 64
    side = torch.arange(n) % 2 * 2 - 1
    half = (torch.arange(n) // 2) % 2 * 2 - 1
    x = torch.stack([3.0 * side, torch.zeros(n)], dim=1) + 0.3 * torch.randn(n, 2)
    g = torch.stack([torch.randn(n), 3.0 * half + 0.3 * torch.randn(n)], dim=1)
    data = {"features": x, "mask": torch.ones(n, dtype=torch.bool), "y": (side > 0).long(),
            "observables": g}

    def task_loss(batch):
        logits, embedding = model(batch["features"], batch["mask"])
        return nn.functional.cross_entropy(logits, batch["y"]), embedding

    return model, data, task_loss, side.numpy(), half.numpy()


def _settings(**space):
    return phases.ClusterSettings(epochs=1, batch_size=16, beta=1.0, alpha_start=1.0,
                                  alpha_step=1.0, schedule=Schedule(lr=1e-4),
                                  space_key="observables", **space)


def _same_partition(a: np.ndarray, b: np.ndarray) -> bool:
    return abs(np.corrcoef(a, b)[0, 1]) > 0.999


def test_the_space_standardises_every_coordinate_and_weights_the_extra_ones():
    rng = np.random.default_rng(1)
    embedding = rng.normal([5.0, -2.0], [3.0, 0.1], size=(200, 2)).astype(np.float32)
    extra = rng.normal([1.0, 7.0, 0.0], [2.0, 4.0, 1.0], size=(200, 3)).astype(np.float32)
    space = phases.ClusterSpace.fit(embedding, extra, "g", (2, 1), weight=0.5)
    x = space.coordinates(embedding, extra)
    assert x.shape == (200, 4)
    assert x.dtype == np.float32
    np.testing.assert_allclose(x.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(x.std(axis=0), [1.0, 1.0, 0.5, 0.5], rtol=1e-5)
    np.testing.assert_allclose(x[:, 2], 0.5 * (extra[:, 2] - extra[:, 2].mean())
                               / extra[:, 2].std(), rtol=1e-4, atol=1e-5)
    as_torch = space.coordinates(torch.from_numpy(embedding), torch.from_numpy(extra))
    np.testing.assert_allclose(as_torch.numpy(), x, rtol=1e-5, atol=1e-5)
    # What a model file stores (torch.load with weights_only) gives the same map back.
    again = phases.ClusterSpace.from_dict(phases.ClusterSpace(**vars(space)).to_dict())
    np.testing.assert_array_equal(again.coordinates(embedding, extra), x)
    with pytest.raises(ValueError, match="columns \\[3\\] of 'g'"):
        phases.ClusterSpace.fit(embedding, extra, "g", (3,), weight=1.0)


def test_the_extra_coordinates_change_the_clusters_where_they_should(tmp_path):
    """K = 2: on the embedding alone the clusters are the two blobs; with the observable g
    beside it at weight 3 they are g's halves, which the network cannot see.
    The centroids get g's coordinate and the assignment of every example uses it."""
    model, data, task_loss, side, half = _quadrant_task()
    centroids, space, _ = phases.train_clustering_in_space(
        model, data, task_loss, _settings(), 2, 4, torch.device("cpu"), tmp_path / "plain")
    assert space is None
    assert centroids.shape == (2, 2)
    with torch.no_grad():
        embedding = model(data["features"], None)[1].numpy()
    plain = evaluation.nearest_centroid(embedding, centroids.numpy())
    assert _same_partition(plain, side)

    model, data, task_loss, side, half = _quadrant_task()
    centroids, space, history = phases.train_clustering_in_space(
        model, data, task_loss, _settings(space_columns=(1,), space_weight=3.0), 2, 4,
        torch.device("cpu"), tmp_path / "space")
    assert centroids.shape == (2, 3)
    assert space.columns == (1,)
    assert np.isfinite(history[0]["loss"])
    with torch.no_grad():
        embedding = model(data["features"], None)[1].numpy()
    extended = evaluation.nearest_centroid(
        space.coordinates(embedding, data["observables"].numpy()), centroids.numpy())
    assert _same_partition(extended, half)
    assert not _same_partition(extended, side)


def test_the_default_path_is_the_embedding_alone(tmp_path):
    """Without space_columns, train_clustering (the jets task's) and
    train_clustering_in_space give the same centroids bit for bit and no space; a space
    setting needs the function that returns the space."""
    results = []
    for name, run in (("a", phases.train_clustering), ("b", phases.train_clustering_in_space)):
        model, data, task_loss, _, _ = _quadrant_task()
        out = run(model, data, task_loss, _settings(), 2, 4, torch.device("cpu"),
                  tmp_path / name)
        results.append(out)
    assert torch.equal(results[0][0], results[1][0])
    assert results[1][1] is None
    assert _settings().space_columns == ()
    model, data, task_loss, _, _ = _quadrant_task()
    with pytest.raises(ValueError, match="train_clustering_in_space"):
        phases.train_clustering(model, data, task_loss, _settings(space_columns=(0,)), 2, 4,
                                torch.device("cpu"), tmp_path / "c")
    with pytest.raises(ValueError, match="space_weight"):
        _settings(space_columns=(0,), space_weight=0.0)
    with pytest.raises(ValueError, match="distinct"):
        _settings(space_columns=(0, 0))
