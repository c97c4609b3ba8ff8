"""UCluster on boosted jets (W/Z/top), one function per workflow stage.

prepare (splits, features, standardisation) -> pretrain (focal loss on the jet-mass
class) -> k-means on the training embeddings -> joint training (focal + beta * cluster
loss) ; a supervised ABCNet on the true labels beside it ; evaluate on the test split.
`settings` is the config's ``jet_clustering`` section.
"""

import numpy as np
import pyarrow as pa
import torch

from hepclust.io.parquet import atomic_path
from hepclust.ucluster import evaluation, model_file, phases
from hepclust.ucluster.abcnet import ABCNet
from hepclust.ucluster.features import (
    FEATURES,
    Standardizer,
    mass_bin_labels,
    particle_features,
)
from hepclust.ucluster.losses import focal_loss
from hepclust.ucluster.training import Batch, predict, train

MASS_CLASSES = 20
ARRAYS = ("features", "mask", "mass_class", "label", "jet_mass")


def prepare(jets: pa.Table, settings: dict,
            seed: int) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Standardizer]:
    """(train, test, standardizer): a seeded random split of the jets into arrays, with
    the features standardised by constants fitted on the training split."""
    features, mask = particle_features(jets, settings["max_particles"])
    jet_mass = jets["jet_mass"].to_numpy()
    arrays = {"features": features, "mask": mask, "mass_class": mass_bin_labels(jet_mass),
              "label": jets["label"].to_numpy().astype(np.int64), "jet_mass": jet_mass}
    order = np.random.default_rng([seed, 4]).permutation(len(jet_mass))
    cut = round(settings["train_fraction"] * len(order))
    train_rows, test_rows = order[:cut], order[cut:]
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ValueError(f"train_fraction {settings['train_fraction']} leaves an empty split "
                         f"of {len(order)} jets")
    train_split = {name: values[train_rows] for name, values in arrays.items()}
    test_split = {name: values[test_rows] for name, values in arrays.items()}
    standardizer = Standardizer.fit(train_split["features"], train_split["mask"])
    for split in (train_split, test_split):
        split["features"] = standardizer.transform(split["features"], split["mask"])
    return train_split, test_split, standardizer


def save_arrays(path, arrays: dict[str, np.ndarray]) -> None:
    with atomic_path(path) as tmp, tmp.open("wb") as out:
        np.savez(out, **arrays)


def load_arrays(path) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {name: data[name] for name in data.files}


def tensors(arrays: dict[str, np.ndarray]) -> Batch:
    return {name: torch.from_numpy(np.ascontiguousarray(arrays[name])) for name in ARRAYS}


def new_model(settings: dict, num_classes: int) -> ABCNet:
    return ABCNet(in_features=len(FEATURES), num_classes=num_classes, k=settings["neighbours"],
                  embedding_size=settings["embedding_size"], pooling=settings["pooling"])


def save_model(path, model: ABCNet, settings: dict, num_classes: int,
               centroids: torch.Tensor | None = None, history: list | None = None) -> None:
    hyperparameters = {"num_classes": num_classes,
                       **{key: settings[key] for key in ("neighbours", "embedding_size",
                                                         "pooling")}}
    model_file.save(path, model, hyperparameters, centroids, history)


def load_model(path, device: torch.device) -> tuple[ABCNet, torch.Tensor]:
    """(model, centroids) from `save_model`'s file; centroids are empty if none."""
    return model_file.load(path, device, lambda state: new_model(state, state["num_classes"]))


def _mass_class_loss(model: ABCNet, gamma: float) -> phases.TaskLoss:
    """The jets task: the focal loss of the jet-mass class."""

    def task_loss(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits, embedding = model(batch["features"], batch["mask"])
        return focal_loss(logits, batch["mass_class"], gamma=gamma), embedding

    return task_loss


def pretrain(train_arrays: dict, settings: dict, seed: int, device: torch.device,
             checkpoints) -> tuple[ABCNet, list[dict]]:
    """ABCNet trained on the jet-mass class with the focal loss alone."""
    torch.manual_seed(seed)
    model = new_model(settings, MASS_CLASSES)
    history = phases.pretrain(model, tensors(train_arrays),
                              _mass_class_loss(model, settings["gamma"]), settings, seed,
                              device, checkpoints)
    return model, history


def embeddings(model: ABCNet, arrays: dict, settings: dict,
               device: torch.device) -> np.ndarray:
    return phases.embeddings(model, tensors(arrays), settings, device)


def train_clustering(model: ABCNet, train_arrays: dict, settings: dict, seed: int,
                     device: torch.device, checkpoints) -> tuple[torch.Tensor, list[dict]]:
    """UCluster's joint phase with K = `clusters` (`phases.train_clustering`)."""
    return phases.train_clustering(model, tensors(train_arrays),
                                   _mass_class_loss(model, settings["gamma"]), settings,
                                   settings["clusters"], seed, device, checkpoints)


def train_supervised(train_arrays: dict, settings: dict, seed: int, device: torch.device,
                     checkpoints) -> tuple[ABCNet, list[dict]]:
    """The upper bound: the same network trained on the true labels (of `classes`)."""
    torch.manual_seed(seed)
    model = new_model(settings, len(settings["classes"]))

    def loss(batch: Batch, epoch: int) -> torch.Tensor:
        logits, _ = model(batch["features"], batch["mask"])
        return focal_loss(logits, batch["label"], gamma=0.0)

    history = train(model, tensors(train_arrays), loss, settings["supervised_epochs"],
                    settings["batch_size"], checkpoints, seed, device,
                    phases.schedule(settings), desc="supervised")
    return model, history


def evaluate(pretrained: ABCNet, ucluster: ABCNet, centroids: torch.Tensor,
             supervised: ABCNet, train_arrays: dict, test_arrays: dict, settings: dict,
             seed: int, device: torch.device) -> tuple[dict, dict[str, np.ndarray]]:
    """The metrics of one seed on the test split, and the arrays the plots need."""
    train_before = embeddings(pretrained, train_arrays, settings, device)
    test_before = embeddings(pretrained, test_arrays, settings, device)
    test_after = embeddings(ucluster, test_arrays, settings, device)
    train_after = embeddings(ucluster, train_arrays, settings, device)
    labels, train_labels = test_arrays["label"], train_arrays["label"]

    kmeans = evaluation.kmeans(train_before, settings["clusters"], seed)
    before_clusters = kmeans.predict(test_before)
    after_clusters = evaluation.nearest_centroid(test_after, centroids.cpu().numpy())
    k, classes = settings["knn_neighbours"], settings["classes"]
    knn_embedding = evaluation.knn_evaluation(train_after, train_labels, test_after, labels, k,
                                              classes=classes)
    knn_mass = evaluation.knn_evaluation(train_arrays["jet_mass"][:, None], train_labels,
                                         test_arrays["jet_mass"][:, None], labels, k,
                                         classes=classes)
    supervised_logits, _ = predict(supervised, tensors(test_arrays),
                                   4 * settings["batch_size"], device)
    metrics = {
        "kmeans_pretrain_accuracy": evaluation.clustering_scores(labels, before_clusters)[
            "accuracy"],
        "ucluster_accuracy": evaluation.clustering_scores(labels, after_clusters)["accuracy"],
        "knn_embedding_accuracy": knn_embedding["accuracy"],
        "knn_mass_accuracy": knn_mass["accuracy"],
        "supervised_accuracy": float(
            (supervised_logits.argmax(dim=1).numpy() == labels).mean()),
        "knn_embedding_auc": knn_embedding["auc"],
        "knn_mass_auc": knn_mass["auc"],
        "roc": {"embedding": knn_embedding["roc"], "mass": knn_mass["roc"]},
        "cluster_sizes": {"pretrain_kmeans": np.bincount(before_clusters).tolist(),
                          "ucluster": np.bincount(after_clusters,
                                                  minlength=len(centroids)).tolist()},
        "seed": seed,
        "classes": list(classes),
        "train_jets": len(train_labels),
        "test_jets": len(labels),
    }
    shown = np.random.default_rng(seed).permutation(len(labels))[:settings["tsne_jets"]]
    pictures = {"label": labels[shown], "before": test_before[shown],
                "after": test_after[shown], "before_cluster": before_clusters[shown],
                "after_cluster": after_clusters[shown]}
    return metrics, pictures
