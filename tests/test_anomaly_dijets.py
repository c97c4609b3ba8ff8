"""The anomaly stages' library: independent splits, standardised inputs, the segmentation
pretraining and joint clustering on a toy sample, model files, and the cluster files."""

import numpy as np
import pyarrow as pa
import pytest
import torch

from hepclust.anomaly import dijets
from hepclust.anomaly.features import NUM_CLASSES
from hepclust.io.schema import DIJETS

SETTINGS = {
    "train_events": 20, "test_events": 6, "eval_events": 10, "max_particles": 10,
    "neighbours": 3, "embedding_size": 2, "pooling": "max", "gamma": 2.0, "beta": 1.0,
    "alpha_start": 1.0, "alpha_step": 2.0, "lr": 1e-3, "lr_halving_epochs": 3,
    "lr_min": 1e-5, "batch_size": 8, "pretrain_epochs": 1, "cluster_epochs": 1,
}


def toy_dijets(n=40, seed=0) -> pa.Table:
    """Random dijet events: two back-to-back jets, 3 to 8 particles around each."""
    rng = np.random.default_rng(seed)
    columns = {"label": (rng.random(n) < 0.2).astype(np.int8)}
    for jet, phi in (("jet1", 0.5), ("jet2", 0.5 - np.pi)):
        columns |= {f"{jet}_pt": rng.uniform(1000, 1500, n), f"{jet}_eta": rng.normal(0, 1, n),
                    f"{jet}_phi": np.full(n, phi), f"{jet}_mass": rng.uniform(20, 600, n),
                    f"{jet}_tau21": rng.uniform(0.1, 0.9, n)}
    columns["mjj"] = rng.uniform(2500, 5000, n)
    parts = {"pt": [], "eta": [], "phi": []}
    for event in range(n):
        pt, eta, phi = [], [], []
        for jet in ("jet1", "jet2"):
            count = rng.integers(3, 9)
            pt += list(rng.uniform(5, 300, count))
            eta += list(columns[f"{jet}_eta"][event] + rng.normal(0, 0.2, count))
            phi += list(columns[f"{jet}_phi"][event] + rng.normal(0, 0.2, count))
        parts["pt"].append(pt)
        parts["eta"].append(eta)
        parts["phi"].append(phi)
    columns |= {f"part_{name}": values for name, values in parts.items()}
    return pa.table(columns, schema=DIJETS)


@pytest.fixture(scope="module")
def splits():
    return dijets.prepare(toy_dijets(), dijets.Splits.from_config(SETTINGS), radius=1.0,
                          seed=3)


def test_splits_are_disjoint_random_and_seeded():
    sizes = {"train": 5, "test": 3, "eval": 4}
    rows = dijets.split_rows(20, sizes, seed=1)
    assert {name: len(chosen) for name, chosen in rows.items()} == sizes
    together = np.concatenate(list(rows.values()))
    assert len(np.unique(together)) == 12
    assert all((rows[name] == again).all()
               for name, again in dijets.split_rows(20, sizes, seed=1).items())
    assert not (rows["train"] == dijets.split_rows(20, sizes, seed=2)["train"]).all()
    # A split's rows keep a random order, so its first events are a random subset.
    train = dijets.split_rows(1000, {"train": 500, "test": 0, "eval": 500}, seed=1)["train"]
    assert 200 < train[:250].mean() < 800
    assert not (np.diff(train) > 0).all()


def test_splits_larger_than_the_table_are_refused():
    with pytest.raises(ValueError, match=r"dijets\.parquet: .* need 13 events .* has 12"):
        dijets.split_rows(12, {"train": 5, "test": 4, "eval": 4}, 0, "dijets.parquet")


def test_prepare_standardises_with_training_constants(splits):
    arrays, standardizers = splits
    assert {name: len(split["label"]) for name, split in arrays.items()} == {
        "train": 20, "test": 6, "eval": 10}
    train = arrays["train"]
    real = train["features"][train["mask"]]
    assert np.abs(real[:, 2:].mean(axis=0)).max() < 1e-4
    assert (train["features"][~train["mask"]] == 0).all()
    assert train["global_features"].mean(axis=0) == pytest.approx(np.zeros(4), abs=1e-5)
    assert train["global_features"].std(axis=0) == pytest.approx(np.ones(4), abs=1e-4)
    mean = np.array(standardizers["global_features"]["mean"])
    std = np.array(standardizers["global_features"]["std"])
    for split in arrays.values():
        assert split["global_features"] == pytest.approx(
            (split["global_raw"] - mean) / std, abs=1e-5)
        assert set(split) >= {"mass_class", "mjj", "label", "jet", "global_raw"}
        assert split["mass_class"].max() < NUM_CLASSES


def test_first_takes_a_leading_block(splits):
    train = splits[0]["train"]
    block = dijets.first(train, 7)
    assert all(len(values) == 7 for values in block.values())
    assert (block["mjj"] == train["mjj"][:7]).all()
    with pytest.raises(ValueError, match="21 events of a split of 20"):
        dijets.first(train, 21)


def test_pretrain_cluster_assign_and_reload(splits, tmp_path):
    arrays = splits[0]
    device = torch.device("cpu")
    network, training = dijets.Network.from_config(SETTINGS), dijets.Training.from_config(SETTINGS)
    model, history = dijets.pretrain(arrays["train"], network, training, 5, device,
                                     tmp_path / "pre")
    assert [h["epoch"] for h in history] == [0]
    assert np.isfinite(history[0]["loss"])
    centroids, space, history = dijets.train_clustering(model, arrays["train"], training, 3, 5,
                                                        device, tmp_path / "k3")
    assert centroids.shape == (3, 2)
    assert space is None
    assigned = dijets.assign(model, centroids, arrays["eval"], 8, device)
    assert assigned["embedding"].shape == (10, 2)
    assert set(assigned["cluster"].tolist()) <= {0, 1, 2}
    distance = np.linalg.norm(assigned["embedding"][:, None] - centroids.numpy()[None], axis=-1)
    assert (assigned["cluster"] == distance.argmin(axis=1)).all()

    dijets.save_model(tmp_path / "model.pt", model, network, centroids, history)
    again, saved = dijets.load_model(tmp_path / "model.pt", device)
    assert torch.equal(saved, centroids)
    reloaded = dijets.assign(again, saved, arrays["eval"], 8, device)
    assert reloaded["embedding"] == pytest.approx(assigned["embedding"], abs=1e-6)
    assert dijets.load_space(tmp_path / "model.pt") is None


def test_the_clustering_space_holds_the_named_global_features(splits, tmp_path):
    """With cluster_space_features the centroids get a coordinate per named global feature
    (after the embedding's), and every event goes to the nearest centroid in that space,
    also after the model file is read back."""
    arrays = splits[0]
    device = torch.device("cpu")
    network = dijets.Network.from_config(SETTINGS)
    training = dijets.Training.from_config({**SETTINGS, "cluster_space_weight": 2.0,
                                            "cluster_space_features": ["tau21_j2",
                                                                       "log_mass_j1"]})
    assert training.cluster_settings().space_columns == (3, 0)
    model, _ = dijets.pretrain(arrays["train"], network, training, 5, device, tmp_path / "pre")
    centroids, space, history = dijets.train_clustering(model, arrays["train"], training, 3, 5,
                                                        device, tmp_path / "k3")
    assert centroids.shape == (3, 4)
    assert space.key == "global_features"
    assigned = dijets.assign(model, centroids, arrays["eval"], 8, device, space)
    position = space.coordinates(assigned["embedding"], arrays["eval"]["global_features"])
    np.testing.assert_allclose(position[:, 2:], 2.0 * (
        arrays["eval"]["global_features"][:, [3, 0]]
        - arrays["train"]["global_features"][:, [3, 0]].mean(axis=0))
        / arrays["train"]["global_features"][:, [3, 0]].std(axis=0), rtol=1e-4, atol=1e-4)
    distance = np.linalg.norm(position[:, None] - centroids.numpy()[None], axis=-1)
    assert (assigned["cluster"] == distance.argmin(axis=1)).all()

    dijets.save_model(tmp_path / "model.pt", model, network, centroids, history, space)
    again, saved = dijets.load_model(tmp_path / "model.pt", device)
    reloaded = dijets.assign(again, saved, arrays["eval"], 8, device,
                             dijets.load_space(tmp_path / "model.pt"))
    np.testing.assert_array_equal(reloaded["cluster"], assigned["cluster"])
    with pytest.raises(ValueError, match="mass_j1"):
        dijets.Training.from_config({**SETTINGS, "cluster_space_features": ["mass_j1"]})


def test_assigned_split_reads_one_split_back():
    stored = {"centroids": np.zeros((2, 2)), "eval_cluster": np.array([0, 1]),
              "test_cluster": np.array([1]), "eval_mjj": np.array([3000.0, 3100.0])}
    assert set(dijets.assigned_split(stored, "eval")) == {"cluster", "mjj"}
    assert dijets.assigned_split(stored, "test")["cluster"].tolist() == [1]
    with pytest.raises(ValueError, match="no train arrays"):
        dijets.assigned_split(stored, "train")


def test_typed_settings_name_what_is_missing():
    training = dijets.Training.from_config(SETTINGS)
    assert training.cluster_settings().alpha_step == 2.0
    assert training.pretrain_settings().epochs == SETTINGS["pretrain_epochs"]
    with pytest.raises(KeyError, match="Network settings lack"):
        dijets.Network.from_config({"neighbours": 3})


def test_mass_bins_set_the_labels_and_the_classes(tmp_path):
    settings = {**SETTINGS, "mass_bins": 40}
    arrays, _ = dijets.prepare(toy_dijets(), dijets.Splits.from_config(settings), radius=1.0,
                               seed=3)
    train = arrays["train"]
    # Each real particle carries its jet's interval of 40 equal ones from 10 to 1000 GeV.
    mass = np.exp(train["global_raw"][:, :2])
    expected = np.clip(np.floor((mass - 10.0) / (990.0 / 40)), 0, 39).astype(int) + 1
    jet = train["jet"].astype(int)
    real = jet > 0
    rows = np.nonzero(real)[0]
    assert (train["mass_class"][real] == expected[rows, jet[real] - 1]).all()
    assert (train["mass_class"][~real] == 0).all()
    assert train["mass_class"].max() >= NUM_CLASSES  # beyond the paper's 20 intervals
    network = dijets.Network.from_config(settings)
    model = dijets.new_model(network)
    assert model.output.out_features == 41
    dijets.save_model(tmp_path / "model.pt", model, network)
    again, _ = dijets.load_model(tmp_path / "model.pt", torch.device("cpu"))
    assert again.output.out_features == 41
