"""The jets analysis's selection, baselines and joint-phase start (issue 15): the mass
window on every split, the same-particles mass, the KL k-means initialisation, beta
balancing, the optimiser carried over, and the supervised network's width."""

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch import nn

from hepclust.ucluster import evaluation, phases
from hepclust.ucluster.jets import (
    MASS_CLASSES,
    gradient_boosting,
    network_settings,
    new_model,
    prepare,
    select_mass_window,
)
from hepclust.ucluster.observables import OBSERVABLES, jet_observables, leading_mass
from hepclust.ucluster.training import Schedule, optimizer_state, train
from toy_networks import LinearNetwork

SECTION = {"neighbours": 4, "embedding_size": 3, "pooling": "mean",
           "supervised_embedding_size": 64, "supervised_pooling": "mean_log_n",
           "supervised_dropout": 0.1}


def test_the_mass_window_holds_on_every_split(toy_jets):
    train, test, _ = prepare(toy_jets, max_particles=8, train_fraction=0.5,
                             mass_window=(50.0, 150.0), seed=1)
    all_masses = toy_jets["jet_mass"].to_numpy()
    expected = np.sum((all_masses > 50) & (all_masses < 150))
    assert 0 < expected < len(all_masses)
    assert len(train["jet_mass"]) + len(test["jet_mass"]) == expected
    for split in (train, test):
        assert ((split["jet_mass"] > 50) & (split["jet_mass"] < 150)).all()
        assert {len(values) for values in split.values()} == {len(split["jet_mass"])}
        assert split["observables"].shape[1] == len(OBSERVABLES)
    with pytest.raises(ValueError, match="no jet"):
        select_mass_window(toy_jets, (1000.0, 2000.0))
    with pytest.raises(ValueError, match="low < high"):
        select_mass_window(toy_jets, (200.0, 10.0))


def two_particle_jet_table(pt, eta, phi, e):
    return pa.table({name: pa.array([values], pa.list_(pa.float32()))
                     for name, values in (("part_pt", pt), ("part_eta", eta), ("part_phi", phi),
                                          ("part_e", e))})


def test_same_particles_mass_by_hand():
    # Two massless back-to-back-in-phi particles of pT 50 at eta 0: m = 2 * 50 = 100 GeV; a
    # third particle is left out with max_particles = 2 and counted with 3.
    jets = two_particle_jet_table([50.0, 50.0, 10.0], [0.0, 0.0, 0.0], [0.0, np.pi, np.pi / 2],
                                  [50.0, 50.0, 10.0])
    np.testing.assert_allclose(leading_mass(jets, 2), [100.0], rtol=1e-5)
    px, py, energy = 0.0, 10.0, 110.0
    np.testing.assert_allclose(leading_mass(jets, 3), [np.sqrt(energy**2 - px**2 - py**2)],
                               rtol=1e-5)


def test_jet_observables_of_toy_jets(toy_jets):
    values = jet_observables(toy_jets)
    column = {name: values[:, i] for i, name in enumerate(OBSERVABLES)}
    np.testing.assert_allclose(column["jet_mass"], toy_jets["jet_mass"].to_numpy())
    np.testing.assert_array_equal(column["multiplicity"], toy_jets["n_constituents"].to_numpy())
    assert (column["tau2"] <= column["tau1"] + 1e-6).all()
    assert (column["tau3"] <= column["tau2"] + 1e-6).all()
    assert ((column["pt_d"] > 0) & (column["pt_d"] <= 1)).all()


def test_gradient_boosting_learns_a_separable_observable():
    rng = np.random.default_rng(0)

    def split(n):
        labels = np.arange(n) % 3
        observables = rng.normal(size=(n, len(OBSERVABLES))).astype(np.float32)
        observables[:, 0] = 80 + 10 * labels + rng.normal(0, 1, n)
        return {"observables": observables, "label": labels}

    result = gradient_boosting(split(600), split(300), seed=0, classes=["W", "Z", "top"])
    assert result["accuracy"] > 0.95
    assert set(result["auc"]) == {"W", "Z", "top"}


def test_kl_kmeans_finds_three_groups_of_probability_vectors():
    rng = np.random.default_rng(3)
    peaks = np.array([[0.8, 0.1, 0.05, 0.05], [0.05, 0.8, 0.1, 0.05], [0.05, 0.05, 0.1, 0.8]])
    truth = np.repeat([0, 1, 2], 50)
    p = np.stack([rng.dirichlet(50 * peaks[t]) for t in truth])
    labels, centres = phases.kl_kmeans(p, 3, seed=0)
    assert evaluation.clustering_scores(truth, labels)["accuracy"] == 1.0
    # Each centre is the mean of its members (the minimiser of the summed KL divergence).
    for k in range(3):
        np.testing.assert_allclose(centres[k], p[labels == k].mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(centres.sum(axis=1), 1.0)
    with pytest.raises(ValueError, match="cannot make"):
        phases.kl_kmeans(p[:2], 3, seed=0)


def test_kl_init_maps_the_groups_back_to_mean_embeddings():
    p = np.array([[0.9, 0.1], [0.85, 0.15], [0.1, 0.9], [0.2, 0.8]])
    embedding = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [12.0, 10.0]])
    centroids = phases.initial_centroids("kl", embedding, p, 2, seed=0)
    assert sorted(map(tuple, centroids.tolist())) == [(1.0, 0.0), (11.0, 10.0)]
    with pytest.raises(ValueError, match="probabilities"):
        phases.initial_centroids("kl", embedding, None, 2, seed=0)
    with pytest.raises(ValueError, match="init must be"):
        phases.ClusterSettings(epochs=1, batch_size=2, beta=1.0, alpha_start=1.0,
                               alpha_step=0.0, init="spectral")


def test_fitted_centroids_reproduce_a_partition_the_means_do_not():
    """Two groups split at x = 1 whose means (-1.5 and 7.83) put the Voronoi boundary at
    3.17: the mean centroids misassign the points at 1.5 and 2; the fitted ones put the
    boundary between 1 and 1.5 and reproduce the labels."""
    x = np.array([-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 1.5, 2.0, 20.0])
    embedding = np.stack([x, np.zeros_like(x)], axis=1)
    labels = (x > 1).astype(np.int64)
    means = np.stack([embedding[labels == k].mean(axis=0) for k in range(2)])
    assert (evaluation.nearest_centroid(embedding, means) != labels).sum() == 2
    centroids = phases.fit_centroids(embedding, labels, 2)
    np.testing.assert_array_equal(evaluation.nearest_centroid(embedding, centroids), labels)
    with pytest.raises(ValueError, match="needs an example"):
        phases.fit_centroids(embedding, np.zeros(len(x), np.int64), 2)


def test_balanced_beta_makes_both_terms_equal():
    assert phases.balanced_beta(2.0, 0.25) == 8.0
    assert phases.balanced_beta(2.0, 0.0) == 1.0
    assert phases.balanced_beta(2.0, 0.25) * 0.25 == pytest.approx(2.0)
    with pytest.raises(ValueError, match="finite"):
        phases.balanced_beta(float("nan"), 1.0)


@pytest.mark.parametrize("factor", [1.0, 0.25])
def test_joint_phase_balances_beta_and_carries_the_optimiser_over(tmp_path, factor):
    torch.manual_seed(0)
    model = LinearNetwork()
    x = torch.randn(64, 2)
    data = {"features": x, "mask": torch.ones(64, dtype=torch.bool), "y": (x[:, 0] > 0).long()}

    def task_loss(batch):
        logits, embedding = model(batch["features"], batch["mask"])
        return nn.functional.cross_entropy(logits, batch["y"]), embedding

    train(model, data, lambda batch, epoch: task_loss(batch)[0], 2, 16, tmp_path / "pre",
          seed=1, device=torch.device("cpu"))
    state = optimizer_state(tmp_path / "pre")
    settings = phases.ClusterSettings(epochs=1, batch_size=16, beta=None, alpha_start=1.0,
                                      alpha_step=1.0, init="kmeans", beta_factor=factor)
    with torch.no_grad():
        embedding = model(x, None)[1]
        start = torch.tensor(phases.initial_centroids("kmeans", embedding.numpy(), None, 2, 4),
                             dtype=torch.float32)
        model.eval()
        task = float(task_loss(data)[0])
        from hepclust.ucluster.losses import cluster_loss
        expected_beta = task / float(cluster_loss(embedding, start, 1.0))
    _, history = phases.train_clustering(model, data, task_loss, settings, 2, 4,
                                         torch.device("cpu"), tmp_path / "joint",
                                         start_optimizer=state)
    assert history[0]["beta"] == pytest.approx(factor * expected_beta, rel=1e-5)
    joint = optimizer_state(tmp_path / "joint")
    assert len(joint["param_groups"]) == 2  # the network's, then the centroids'
    # Adam's step count went on from the pretraining's 2 epochs x 4 batches.
    steps = [float(s["step"]) for s in joint["state"].values()]
    assert steps[0] == 8 + 4
    assert steps[-1] == 4  # the centroids are new


def test_the_supervised_network_is_wide_before_pooling_and_keeps_the_count():
    ucluster = network_settings(SECTION)
    supervised = network_settings(SECTION, "supervised_")
    assert (ucluster.embedding_size, ucluster.pooling, ucluster.dropout) == (3, "mean", 0.0)
    assert (supervised.embedding_size, supervised.pooling) == (64, "mean_log_n")
    model = new_model(supervised, 3).eval()
    assert model.aggregate.linear.out_features == 64
    assert model.head[0].linear.in_features == 65  # the mean and log N
    features = torch.randn(2, 6, 8)
    mask = torch.tensor([[True] * 6, [True] * 2 + [False] * 4])
    logits, pooled = model(features, mask)
    assert logits.shape == (2, 3)
    torch.testing.assert_close(pooled[:, -1], torch.log(torch.tensor([6.0, 2.0])))
    assert new_model(ucluster, MASS_CLASSES)(features, mask)[1].shape == (2, 3)


def test_baselines_run_on_a_training_split_smaller_than_k():
    rng = np.random.default_rng(1)
    labels = np.arange(12) % 3
    observables = rng.normal(size=(12, len(OBSERVABLES))).astype(np.float32)
    result = evaluation.knn_evaluation(observables[:, :1], labels, observables[:6, :1],
                                       labels[:6], neighbours=30, classes=["W", "Z", "top"])
    assert 0 <= result["accuracy"] <= 1
    tree = gradient_boosting({"observables": observables, "label": labels},
                             {"observables": observables[:6], "label": labels[:6]}, seed=0,
                             classes=["W", "Z", "top"])
    assert 0 <= tree["accuracy"] <= 1


def _separable_toy_task():
    torch.manual_seed(0)
    model = LinearNetwork()
    x = torch.cat([0.3 * torch.randn(32, 2) + 3.0, 0.3 * torch.randn(32, 2) - 3.0])
    data = {"features": x, "mask": torch.ones(64, dtype=torch.bool), "y": (x[:, 0] > 0).long()}

    def task_loss(batch):
        logits, embedding = model(batch["features"], batch["mask"])
        return nn.functional.cross_entropy(logits, batch["y"]), embedding

    return model, data, task_loss


def test_refitted_centroids_follow_the_embedding_and_keep_the_start_partition(tmp_path):
    """With refit_steps the centroids end fitted to the start's partition on the final
    embedding (here moved far by a large learning rate), so they assign every example to
    its starting cluster."""
    model, data, task_loss = _separable_toy_task()
    x = data["features"]
    with torch.no_grad():
        before = model(x, None)[1].numpy()
    start, labels = phases.initial_partition("kmeans", before, None, 2, 4)
    settings = phases.ClusterSettings(epochs=2, batch_size=16, beta=1.0, alpha_start=1.0,
                                      alpha_step=1.0, init="kmeans", refit_steps=2,
                                      schedule=Schedule(lr=0.5))
    centroids, _ = phases.train_clustering(model, data, task_loss, settings, 2, 4,
                                           torch.device("cpu"), tmp_path / "joint")
    with torch.no_grad():
        after = model(x, None)[1].numpy()
    assert np.abs(after - before).max() > 1.0
    np.testing.assert_allclose(centroids.numpy(), phases.fit_centroids(after, labels, 2),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(evaluation.nearest_centroid(after, centroids.numpy()), labels)
    assert not np.allclose(centroids.numpy(), start)
    with pytest.raises(ValueError, match="refit_steps"):
        phases.ClusterSettings(epochs=1, batch_size=4, beta=1.0, alpha_start=1.0,
                               alpha_step=1.0, refit_steps=-1)


def test_the_embedding_anchor_comes_from_the_config_and_defaults_to_none():
    section = {"cluster_epochs": 1, "batch_size": 4, "beta": "balanced", "alpha_start": 1.0,
               "alpha_step": 2.0, "lr": 1e-3, "lr_halving_epochs": 3, "lr_min": 1e-5,
               "pretrain_epochs": 2}
    settings = phases.cluster_settings(section)
    assert phases.cluster_settings(section).embedding_anchor == 0.0
    settings = phases.cluster_settings({**section, "joint_embedding_anchor": 10.0})
    assert settings.embedding_anchor == 10.0
    with pytest.raises(ValueError, match="embedding_anchor"):
        phases.ClusterSettings(epochs=1, batch_size=4, beta=1.0, alpha_start=1.0,
                               alpha_step=1.0, embedding_anchor=-1.0)


def test_the_embedding_anchor_keeps_each_embedding_near_its_start(tmp_path):
    """A loss that rewards a larger embedding moves every example's embedding far; with the
    embedding anchor mu |f - f_start|^2 / <|f_start|^2> at mu = 100 each stays close."""
    moved = {}
    for anchor in (0.0, 100.0):
        model, data, _ = _separable_toy_task()

        def growing(batch, model=model):
            embedding = model(batch["features"], batch["mask"])[1]
            return -embedding.norm(dim=1).mean(), embedding

        with torch.no_grad():
            before = model(data["features"], None)[1]
        settings = phases.ClusterSettings(epochs=2, batch_size=16, beta=0.0, alpha_start=1.0,
                                          alpha_step=1.0, init="kmeans",
                                          embedding_anchor=anchor, schedule=Schedule(lr=0.1))
        phases.train_clustering(model, data, growing, settings, 2, 4, torch.device("cpu"),
                                tmp_path / f"joint{anchor}")
        with torch.no_grad():
            after = model(data["features"], None)[1]
        moved[anchor] = float((after - before).square().sum(dim=1).mean()
                              / before.square().sum(dim=1).mean())
    assert moved[0.0] > 1.0
    assert moved[100.0] < 0.05
