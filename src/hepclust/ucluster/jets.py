"""UCluster on boosted jets (W/Z/top), one function per workflow stage.

prepare (mass window, splits, features, standardisation, observables) -> pretrain (focal
loss on the jet-mass class) -> centroid initialisation on the training embeddings -> joint
training (focal + beta * cluster loss) ; a supervised ABCNet on the true labels beside it ;
evaluate on the test split, with the baselines. Each function takes the typed settings it
reads (`NetworkSettings`, `phases.PretrainSettings`, `phases.ClusterSettings`, keywords);
`network_settings` builds them from the config's ``jet_clustering`` section.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import torch
from sklearn.ensemble import HistGradientBoostingClassifier

from hepclust.io.parquet import atomic_path
from hepclust.ucluster import evaluation, model_file, phases
from hepclust.ucluster.abcnet import ABCNet, Pooling
from hepclust.ucluster.features import (
    FEATURES,
    Standardizer,
    mass_bin_labels,
    particle_features,
)
from hepclust.ucluster.losses import focal_loss
from hepclust.ucluster.observables import jet_observables, leading_mass
from hepclust.ucluster.training import (
    Batch,
    Schedule,
    WeightAverage,
    optimizer_state,
    precise_norm_statistics,
    predict,
    train,
)

MASS_CLASSES = 20
# The tensors training reads; the prepared splits also hold "visible_mass" (the mass of
# the particles the network sees) and "observables" (`observables.OBSERVABLES`).
ARRAYS = ("features", "mask", "mass_class", "label", "jet_mass")
EARLY_STOPPING_JETS = 1000
# Jets per batch of the pass that sets the batch norms' statistics after training.
NORM_STATISTICS_BATCH = 256


@dataclass(frozen=True)
class NetworkSettings:
    """What builds an ABCNet (and is saved with it): k of the GAPLayers, the width of the
    pooled layer, the pooling, dropout in the head."""

    neighbours: int
    embedding_size: int
    pooling: Pooling
    dropout: float = 0.0


def network_settings(section: dict, prefix: str = "") -> NetworkSettings:
    """The UCluster network of a ``jet_clustering`` section, or with ``supervised_`` the
    supervised one (its own embedding_size, pooling and dropout)."""
    return NetworkSettings(neighbours=section["neighbours"],
                           embedding_size=section[f"{prefix}embedding_size"],
                           pooling=section[f"{prefix}pooling"],
                           dropout=section.get(f"{prefix}dropout", 0.0))


def select_mass_window(jets: pa.Table, mass_window: tuple[float, float]) -> pa.Table:
    """The jets with low < jet_mass < high GeV (the reference code's selection)."""
    low, high = mass_window
    if not low < high:
        raise ValueError(f"mass_window needs low < high, got {list(mass_window)}")
    mass = jets["jet_mass"]
    selected = jets.filter(pc.and_(pc.greater(mass, low), pc.less(mass, high)))
    if selected.num_rows == 0:
        raise ValueError(f"no jet has a mass inside the window {list(mass_window)} GeV")
    return selected


def prepare(jets: pa.Table, *, max_particles: int, train_fraction: float,
            mass_window: tuple[float, float], seed: int,
            ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], Standardizer]:
    """(train, test, standardizer): the jets inside `mass_window`, split at random
    (`train_fraction` to train) into arrays, the features standardised by constants fitted
    on the training split. Every method and baseline reads these splits, so the window
    holds for all of them alike."""
    jets = select_mass_window(jets, mass_window)
    features, mask = particle_features(jets, max_particles)
    jet_mass = jets["jet_mass"].to_numpy()
    arrays = {"features": features, "mask": mask, "mass_class": mass_bin_labels(jet_mass),
              "label": jets["label"].to_numpy().astype(np.int64), "jet_mass": jet_mass,
              "visible_mass": leading_mass(jets, max_particles).astype(np.float32),
              "observables": jet_observables(jets)}
    order = np.random.default_rng([seed, 4]).permutation(len(jet_mass))
    cut = round(train_fraction * len(order))
    train_rows, test_rows = order[:cut], order[cut:]
    if len(train_rows) == 0 or len(test_rows) == 0:
        raise ValueError(f"train_fraction {train_fraction} leaves an empty split of "
                         f"{len(order)} jets")
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


def new_model(network: NetworkSettings, num_classes: int) -> ABCNet:
    return ABCNet(in_features=len(FEATURES), num_classes=num_classes, k=network.neighbours,
                  embedding_size=network.embedding_size, pooling=network.pooling,
                  dropout=network.dropout)


def save_model(path, model: ABCNet, network: NetworkSettings, num_classes: int,
               centroids: torch.Tensor | None = None, history: list | None = None,
               optimizer: dict | None = None) -> None:
    """The model, what rebuilds it, its centroids, history and (to carry it over to the
    next phase) its optimiser state."""
    model_file.save(path, model, {"num_classes": num_classes, **asdict(network)}, centroids,
                    history, optimizer)


def _network_of(state: dict) -> NetworkSettings:
    return NetworkSettings(neighbours=state["neighbours"],
                           embedding_size=state["embedding_size"], pooling=state["pooling"],
                           dropout=state.get("dropout", 0.0))


def load_model(path, device: torch.device) -> tuple[ABCNet, torch.Tensor]:
    """(model, centroids) from `save_model`'s file; centroids are empty if none."""
    return model_file.load(path, device,
                           lambda state: new_model(_network_of(state), state["num_classes"]))


def _mass_class_loss(model: ABCNet, gamma: float) -> phases.TaskLoss:
    """The jets task: the focal loss of the jet-mass class."""

    def task_loss(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits, embedding = model(batch["features"], batch["mask"])
        return focal_loss(logits, batch["mass_class"], gamma=gamma), embedding

    return task_loss


def pretrain(train_arrays: dict, *, network: NetworkSettings,
             phase: phases.PretrainSettings, gamma: float, seed: int, device: torch.device,
             checkpoints, precise_norm: bool = False) -> tuple[ABCNet, list[dict], dict]:
    """ABCNet trained on the jet-mass class with the focal loss alone: (model, history,
    the optimiser's final state). `precise_norm`: the batch norms' running statistics are
    then averaged over the whole training split (`precise_norm_statistics`)."""
    torch.manual_seed(seed)
    model = new_model(network, MASS_CLASSES)
    data = tensors(train_arrays)
    history = phases.pretrain(model, data, _mass_class_loss(model, gamma), phase, seed,
                              device, checkpoints)
    if precise_norm:
        precise_norm_statistics(model, data, NORM_STATISTICS_BATCH, device)
    return model, history, optimizer_state(checkpoints)


def embeddings(model: ABCNet, arrays: dict, batch_size: int,
               device: torch.device) -> np.ndarray:
    return phases.embeddings(model, tensors(arrays), batch_size, device)


def train_clustering(model: ABCNet, train_arrays: dict, *, phase: phases.ClusterSettings,
                     clusters: int, gamma: float, seed: int, device: torch.device,
                     checkpoints, start_optimizer: dict | None = None,
                     ) -> tuple[torch.Tensor, list[dict]]:
    """UCluster's joint phase with K = `clusters` (`phases.train_clustering`)."""
    return phases.train_clustering(model, tensors(train_arrays),
                                   _mass_class_loss(model, gamma), phase, clusters, seed,
                                   device, checkpoints, start_optimizer=start_optimizer)


def train_supervised(train_arrays: dict, *, network: NetworkSettings, classes: int,
                     epochs: int,
                     batch_size: int, schedule: Schedule, seed: int, device: torch.device,
                     checkpoints, precise_norm: bool = False,
                     average_epochs: int = 1) -> tuple[ABCNet, list[dict]]:
    """The upper bound: the network trained on the true labels (cross-entropy), one
    output per class of the analysis; `precise_norm` as in `pretrain`. `average_epochs`
    > 1: the model's weights are the average of the last that many epochs' (stochastic
    weight averaging, `training.WeightAverage`), and need `precise_norm`."""
    if not 1 <= average_epochs <= epochs:
        raise ValueError(f"average_epochs must be 1..{epochs} (the epochs), got {average_epochs}")
    if average_epochs > 1 and not precise_norm:
        raise ValueError("averaged weights need precise_norm: the running batch-norm "
                         "statistics belong to the last epoch's weights")
    torch.manual_seed(seed)
    model = new_model(network, classes)

    def loss(batch: Batch, epoch: int) -> torch.Tensor:
        logits, _ = model(batch["features"], batch["mask"])
        return focal_loss(logits, batch["label"], gamma=0.0)

    data = tensors(train_arrays)
    average = WeightAverage(model, epochs - average_epochs, Path(checkpoints) / "average.pt") \
        if average_epochs > 1 else None
    history = train(model, data, loss, epochs, batch_size, checkpoints, seed, device, schedule,
                    desc="supervised", after_step=average.after_step if average else None)
    if average is not None:
        average.load_into(model)
    if precise_norm:
        precise_norm_statistics(model, data, NORM_STATISTICS_BATCH, device)
    return model, history


def gradient_boosting(train_arrays: dict, test_arrays: dict, seed: int,
                      classes: Sequence[str]) -> dict:
    """The physicist's supervised baseline: a gradient-boosted tree on the jet observables
    (`observables.OBSERVABLES`), early-stopped on a tenth of the training split (from
    EARLY_STOPPING_JETS training jets; below, too few to hold any out). Accuracy and
    one-vs-rest AUC per class on the test split."""
    tree = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.1,
        early_stopping=len(train_arrays["label"]) >= EARLY_STOPPING_JETS,
        validation_fraction=0.1, random_state=seed)
    tree.fit(train_arrays["observables"], train_arrays["label"])
    probability = tree.predict_proba(test_arrays["observables"])
    return evaluation.probability_scores(test_arrays["label"], probability, tree.classes_,
                                         classes)


def evaluate(pretrained: ABCNet, ucluster: ABCNet, centroids: torch.Tensor,
             supervised: ABCNet, train_arrays: dict, test_arrays: dict, *, clusters: int,
             classes: Sequence[str], knn_neighbours: int, tsne_jets: int, batch_size: int,
             seed: int,
             device: torch.device) -> tuple[dict, dict[str, np.ndarray]]:
    """The metrics of one seed on the test split, and the arrays the plots need."""
    train_data, test_data = tensors(train_arrays), tensors(test_arrays)
    train_probability, train_before = phases.class_probabilities(pretrained, train_data,
                                                                 batch_size, device)
    test_before = phases.embeddings(pretrained, test_data, batch_size, device)
    test_after = phases.embeddings(ucluster, test_data, batch_size, device)
    train_after = phases.embeddings(ucluster, train_data, batch_size, device)
    labels, train_labels = test_arrays["label"], train_arrays["label"]

    init_accuracy, before_clusters = {}, None
    for init in phases.INITS:
        start = phases.initial_centroids(init, train_before, train_probability, clusters, seed)
        assigned = evaluation.nearest_centroid(test_before, start)
        init_accuracy[init] = evaluation.clustering_scores(labels, assigned)["accuracy"]
        if init == "kmeans":
            before_clusters = assigned
    after_clusters = evaluation.nearest_centroid(test_after, centroids.cpu().numpy())
    k = knn_neighbours
    knn_embedding = evaluation.knn_evaluation(train_after, train_labels, test_after, labels, k,
                                              classes=classes)
    knn_mass = evaluation.knn_evaluation(train_arrays["visible_mass"][:, None], train_labels,
                                         test_arrays["visible_mass"][:, None], labels, k,
                                         classes=classes)
    knn_full_mass = evaluation.knn_evaluation(train_arrays["jet_mass"][:, None], train_labels,
                                              test_arrays["jet_mass"][:, None], labels, k,
                                              classes=classes)
    tree = gradient_boosting(train_arrays, test_arrays, seed, classes)
    supervised_logits, _ = predict(supervised, test_data, 4 * batch_size, device)
    metrics = {
        "kmeans_pretrain_accuracy": init_accuracy["kmeans"],
        "init_accuracy": init_accuracy,
        "ucluster_accuracy": evaluation.clustering_scores(labels, after_clusters)["accuracy"],
        "knn_embedding_accuracy": knn_embedding["accuracy"],
        "knn_mass_accuracy": knn_mass["accuracy"],
        "knn_full_mass_accuracy": knn_full_mass["accuracy"],
        "supervised_accuracy": float(
            (supervised_logits.argmax(dim=1).numpy() == labels).mean()),
        "gbdt_accuracy": tree["accuracy"],
        "knn_embedding_auc": knn_embedding["auc"],
        "knn_mass_auc": knn_mass["auc"],
        "knn_full_mass_auc": knn_full_mass["auc"],
        "gbdt_auc": tree["auc"],
        "roc": {"embedding": knn_embedding["roc"], "mass": knn_mass["roc"],
                "full_mass": knn_full_mass["roc"]},
        "cluster_sizes": {"pretrain_kmeans": np.bincount(before_clusters,
                                                         minlength=clusters).tolist(),
                          "ucluster": np.bincount(after_clusters,
                                                  minlength=len(centroids)).tolist()},
        "seed": seed,
        "classes": list(classes),
        "train_jets": len(train_labels),
        "test_jets": len(labels),
    }
    shown = np.random.default_rng(seed).permutation(len(labels))[:tsne_jets]
    pictures = {"label": labels[shown], "before": test_before[shown],
                "after": test_after[shown], "before_cluster": before_clusters[shown],
                "after_cluster": after_clusters[shown]}
    return metrics, pictures
