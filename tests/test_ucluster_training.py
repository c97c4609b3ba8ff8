"""The UCluster training loop (schedule, batches, checkpoints, resume) and the jets stages."""

import numpy as np
import pyarrow as pa
import pytest
import torch
from torch import nn

from hepclust.ucluster import evaluation, phases
from hepclust.ucluster.abcnet import MaskedBatchNorm
from hepclust.ucluster.features import select_classes
from hepclust.ucluster.jets import (
    load_model,
    network_settings,
    new_model,
    prepare,
    save_model,
    train_supervised,
)
from hepclust.ucluster.training import (
    Schedule,
    WeightAverage,
    batches,
    freeze_norms,
    train,
)

SETTINGS = {
    "train_fraction": 0.6,
    "max_particles": 12,
    "neighbours": 4,
    "embedding_size": 4,
    "pooling": "max",
    "batch_size": 8,
    "lr": 1e-3,
    "lr_halving_epochs": 3,
    "lr_min": 1e-5,
}
WINDOW = (10.0, 200.0)


def prepared(toy_jets):
    return prepare(toy_jets, max_particles=SETTINGS["max_particles"],
                   train_fraction=SETTINGS["train_fraction"], mass_window=WINDOW, seed=5)


def toy_data(n=40):
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=generator)
    return {"x": x, "y": (x.sum(dim=1) > 0).long()}


def toy_run(checkpoints, epochs, fail_at=None):
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    extra = nn.Parameter(torch.zeros(2))
    calls = []

    def loss(batch, epoch):
        calls.append(epoch)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        logits = model(batch["x"]) + extra
        return nn.functional.cross_entropy(logits, batch["y"])

    history = train(
        model,
        toy_data(),
        loss,
        epochs,
        8,
        checkpoints,
        seed=3,
        device=torch.device("cpu"),
        extra=[extra],
    )
    return model, extra, history, calls


@pytest.mark.parametrize("freeze", [False, True])
def test_frozen_norms_train_with_their_running_statistics(tmp_path, freeze):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 3), MaskedBatchNorm(3), nn.Linear(3, 2))
    model[1].running_mean.fill_(5.0)
    batch_statistics = []

    def loss(batch, epoch):
        batch_statistics.append(model[1].training)
        return nn.functional.cross_entropy(model(batch["x"]), batch["y"])

    before = model[1].weight.detach().clone()
    train(model, toy_data(), loss, 1, 8, tmp_path, seed=1, device=torch.device("cpu"),
          freeze_norm=freeze)
    # Frozen: every batch is normalised with the running statistics, which stay; the
    # norm's scale still trains. Otherwise batch statistics, and the running mean moves.
    assert batch_statistics == [not freeze] * 5
    assert (model[1].running_mean == 5.0).all().item() == freeze
    assert not torch.equal(model[1].weight, before)
    assert model[0].training  # the other layers train as usual
    assert freeze_norms(nn.Sequential(nn.Linear(2, 2), MaskedBatchNorm(2),
                                      nn.BatchNorm1d(2))) == 2


def test_the_step_hook_sees_every_step_and_the_model_trains_again(tmp_path):
    model = nn.Sequential(nn.Linear(3, 3), MaskedBatchNorm(3), nn.Linear(3, 2))
    calls = []

    def after_step(epoch, step, last):
        calls.append((epoch, step, last))
        model.eval()  # as a hook that evaluates the model does

    def loss(batch, epoch):
        assert model.training
        assert model[1].training  # not frozen
        return nn.functional.cross_entropy(model(batch["x"]), batch["y"])

    train(model, toy_data(), loss, 2, 16, tmp_path, seed=1, device=torch.device("cpu"),
          after_step=after_step)
    # 40 examples in batches of 16: 3 steps per epoch.
    assert calls == [(e, s, s == 2) for e in range(2) for s in range(3)]


def test_precise_norm_statistics_average_every_batch_alike():
    """The running statistics become the mean of the batch statistics over all the data
    (3 batches: 16, 16 and 8 examples), the momentum is restored and the model evaluates."""
    from hepclust.ucluster.abcnet import MaskedBatchNorm as Norm
    from hepclust.ucluster.training import precise_norm_statistics

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm = Norm(3)

        def forward(self, features, mask):
            return self.norm(features)

    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(2)) * 3 + 1
    model = Net()
    model.norm.running_mean.fill_(7.0)
    assert precise_norm_statistics(model, {"features": x, "mask": torch.ones(40)}, 16,
                                   torch.device("cpu")) == 1
    chunks = x.split(16)
    torch.testing.assert_close(model.norm.running_mean,
                               torch.stack([c.mean(0) for c in chunks]).mean(0))
    torch.testing.assert_close(model.norm.running_var,
                               torch.stack([c.var(0) for c in chunks]).mean(0))
    assert model.norm.momentum == 0.1
    assert not model.training


def test_learning_rate_halves_every_three_epochs_down_to_the_floor():
    schedule = Schedule(lr=1e-3, halving_epochs=3, lr_min=1e-5)
    assert [schedule.at(e) for e in (0, 2, 3, 6)] == [1e-3, 1e-3, 5e-4, 2.5e-4]
    assert schedule.at(100) == 1e-5


def test_batch_order_depends_only_on_seed_and_epoch():
    data = toy_data()
    first = batches(data, 8, seed=1, epoch=2, device=torch.device("cpu"))
    again = batches(data, 8, seed=1, epoch=2, device=torch.device("cpu"))
    other = batches(data, 8, seed=1, epoch=3, device=torch.device("cpu"))
    assert all(torch.equal(a["x"], b["x"]) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0]["x"], other[0]["x"])
    assert sum(len(b["x"]) for b in first) == 40


def test_an_interrupted_training_resumes_from_the_last_epoch(tmp_path):
    model, extra, history, _ = toy_run(tmp_path / "straight", epochs=3)
    with pytest.raises(KeyboardInterrupt):
        toy_run(tmp_path / "broken", epochs=3, fail_at=8)  # batch 3 of 5 of epoch 1
    resumed, resumed_extra, resumed_history, calls = toy_run(tmp_path / "broken", epochs=3)
    assert set(calls) == {1, 2}  # epoch 0 was not trained again
    assert len(resumed_history) == 3
    for a, b in zip(model.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(extra, resumed_extra)
    assert [h["loss"] for h in resumed_history] == pytest.approx([h["loss"] for h in history])


def test_a_finished_training_trains_nothing_more(tmp_path):
    toy_run(tmp_path, epochs=2)
    _, _, history, calls = toy_run(tmp_path, epochs=2)
    assert calls == []
    assert len(history) == 2


def test_prepare_splits_without_overlap_and_standardises_on_train(toy_jets):
    train, test, standardizer = prepared(toy_jets)
    all_masses = toy_jets["jet_mass"].to_numpy()
    inside = all_masses[(all_masses > WINDOW[0]) & (all_masses < WINDOW[1])]
    n = len(inside)
    assert len(train["label"]) == round(0.6 * n)
    assert len(train["label"]) + len(test["label"]) == n
    masses = np.concatenate([train["jet_mass"], test["jet_mass"]])
    assert sorted(masses.tolist()) == sorted(inside.tolist())
    real = train["features"][train["mask"]]
    np.testing.assert_allclose(real[:, 2:].mean(axis=0), 0, atol=1e-4)
    assert not test["features"][~test["mask"]].any()
    assert train["features"].shape[1] == SETTINGS["max_particles"]
    assert standardizer.mean.shape == (8,)


def test_a_saved_model_loads_back_identical(tmp_path, toy_jets):
    train, _, _ = prepared(toy_jets)
    network = network_settings(SETTINGS)
    model = new_model(network, 20).eval()
    centroids = torch.randn(3, SETTINGS["embedding_size"])
    save_model(tmp_path / "m.pt", model, network, 20, centroids)
    loaded, loaded_centroids = load_model(tmp_path / "m.pt", torch.device("cpu"))
    features = torch.from_numpy(train["features"][:5])
    mask = torch.from_numpy(train["mask"][:5])
    with torch.no_grad():
        torch.testing.assert_close(model(features, mask)[1], loaded.eval()(features, mask)[1])
    torch.testing.assert_close(loaded_centroids, centroids)


def test_knn_separates_separable_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1, 2], 100)
    points = rng.normal(size=(300, 2)) * 0.1 + labels[:, None]
    result = evaluation.knn_evaluation(points[::2], labels[::2], points[1::2], labels[1::2], 5,
                                       classes=["W", "Z", "top"])
    assert result["accuracy"] == 1.0
    assert all(auc == 1.0 for auc in result["auc"].values())
    assert result["roc"]["W"]["tpr"][-1] == 1.0


def test_nearest_centroid_and_seed_summary():
    centroids = np.array([[0.0, 0.0], [10.0, 0.0]])
    assert evaluation.nearest_centroid(np.array([[1.0, 1.0], [9.0, -1.0]]), centroids).tolist() == [
        0,
        1,
    ]
    seeds = [
        {key: value for key in evaluation.HEADLINE}
        | {
            "classes": ["W", "Z", "top"],
            "knn_embedding_auc": dict.fromkeys(["W", "Z", "top"], value),
            "knn_mass_auc": dict.fromkeys(["W", "Z", "top"], 0.5),
            "knn_full_mass_auc": dict.fromkeys(["W", "Z", "top"], 0.5),
            "gbdt_auc": dict.fromkeys(["W", "Z", "top"], 0.5),
            "init_accuracy": {"kmeans": value, "kl": 0.5},
            "roc": {},
        }
        for value in (0.6, 0.8)
    ]
    combined = evaluation.combine_seeds(seeds)
    assert combined["ucluster_accuracy"] == 0.6
    assert combined["over_seeds"]["ucluster_accuracy"]["mean"] == pytest.approx(0.7)
    assert combined["over_seeds"]["knn_embedding_auc"]["top"]["std"] == pytest.approx(0.1)
    assert combined["over_seeds"]["init_accuracy"]["kmeans"]["mean"] == pytest.approx(0.7)
    assert len(combined["seeds"]) == 2
    assert "roc" not in combined["seeds"][0]


def test_the_supervised_model_has_one_output_per_chosen_class(toy_jets, tmp_path):
    # hls4ml's five classes (the crash of a 3-class model on label 4), then W and top alone.
    five = toy_jets.set_column(toy_jets.schema.get_field_index("label"), "label",
                               pa.array(np.arange(toy_jets.num_rows) % 5, pa.int8()))
    for classes in (["W", "Z", "top", "q", "g"], ["top", "W"]):
        jets, _ = select_classes(five, classes)
        train_arrays, _, _ = prepared(jets)
        model, history = train_supervised(
            train_arrays, network=network_settings(SETTINGS), classes=len(classes), epochs=1,
            batch_size=SETTINGS["batch_size"], schedule=phases.schedule(SETTINGS), seed=5,
            device=torch.device("cpu"), checkpoints=tmp_path / "-".join(classes))
        assert len(history) == 1
        logits, _ = model.eval()(torch.from_numpy(train_arrays["features"][:4]),
                                 torch.from_numpy(train_arrays["mask"][:4]))
        assert logits.shape == (4, len(classes))


def averaged_run(checkpoints, epochs, first_epoch, fail_at=None):
    """toy_run's training with a WeightAverage from `first_epoch`; also the parameters at
    the end of every epoch (recorded by the hook, in order)."""
    torch.manual_seed(0)
    model = nn.Linear(3, 2)
    average = WeightAverage(model, first_epoch, checkpoints / "average.pt")
    ends, calls = {}, []

    def after_step(epoch, step, last):
        if last:
            ends[epoch] = [parameter.detach().clone() for parameter in model.parameters()]
        average.after_step(epoch, step, last)

    def loss(batch, epoch):
        calls.append(epoch)
        if fail_at is not None and len(calls) == fail_at:
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(model(batch["x"]), batch["y"])

    train(model, toy_data(), loss, epochs, 8, checkpoints, seed=3, device=torch.device("cpu"),
          after_step=after_step)
    return model, average, ends


def test_the_weight_average_is_the_mean_of_the_last_epochs_and_survives_a_resume(tmp_path):
    model, average, ends = averaged_run(tmp_path / "straight", epochs=4, first_epoch=2)
    assert average.load_into(model) == 2
    for index, parameter in enumerate(model.parameters()):
        torch.testing.assert_close(parameter.detach(), (ends[2][index] + ends[3][index]) / 2)
    # Killed in the last epoch, after epoch 2 went into the average: resumed, the same.
    with pytest.raises(KeyboardInterrupt):
        averaged_run(tmp_path / "broken", epochs=4, first_epoch=2, fail_at=18)
    resumed, resumed_average, _ = averaged_run(tmp_path / "broken", epochs=4, first_epoch=2)
    assert resumed_average.load_into(resumed) == 2
    for a, b in zip(model.parameters(), resumed.parameters(), strict=True):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="no epoch"):
        WeightAverage(nn.Linear(3, 2), 5, tmp_path / "none.pt").load_into(nn.Linear(3, 2))


def test_the_supervised_average_needs_precise_statistics(toy_jets, tmp_path):
    train_arrays, _, _ = prepared(toy_jets)
    common = {"network": network_settings(SETTINGS), "classes": 3, "epochs": 2,
              "batch_size": SETTINGS["batch_size"], "schedule": phases.schedule(SETTINGS),
              "seed": 5, "device": torch.device("cpu")}
    with pytest.raises(ValueError, match="precise_norm"):
        train_supervised(train_arrays, checkpoints=tmp_path / "a", average_epochs=2, **common)
    with pytest.raises(ValueError, match="average_epochs"):
        train_supervised(train_arrays, checkpoints=tmp_path / "b", average_epochs=3,
                         precise_norm=True, **common)
    _, history = train_supervised(train_arrays, checkpoints=tmp_path / "c",
                                  average_epochs=2, precise_norm=True, **common)
    assert len(history) == 2
    assert (tmp_path / "c" / "average.pt").is_file()
