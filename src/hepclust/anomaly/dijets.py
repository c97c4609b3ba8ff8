"""UCluster for anomaly detection on dijet events, one function per workflow stage
(PRD 103, 092007, Sec. VI), in the form of the jets task (`hepclust.ucluster.jets`).

prepare (independent train / test / evaluation samples, Table III features, standardisation)
-> pretrain (per-particle focal loss on the jet-mass segmentation labels) -> k-means on the
training embeddings -> joint training (focal + beta * cluster loss) for each number of
clusters K -> the nearest centroid of every test and evaluation event. Each function takes
the typed settings it reads (`Splits`, `Network`, `Training`), built from the config's
``anomaly`` keys with `from_config`.
"""

from dataclasses import MISSING, asdict, dataclass, fields

import numpy as np
import pyarrow as pa
import torch

from hepclust.anomaly.features import FEATURES as PARTICLE_FEATURES
from hepclust.anomaly.features import GLOBAL_FEATURES, MASS_BINS, dijet_inputs
from hepclust.ucluster import evaluation, model_file, phases
from hepclust.ucluster.abcnet import ABCNet
from hepclust.ucluster.features import Standardizer
from hepclust.ucluster.losses import focal_loss
from hepclust.ucluster.training import Batch, Schedule

SPLITS = ("train", "test", "eval")


class _FromConfig:
    @classmethod
    def from_config(cls, block: dict):
        """The fields of this dataclass out of a config block (extra keys are ignored)."""
        missing = [f.name for f in fields(cls) if f.name not in block
                   and f.default is MISSING]
        if missing:
            raise KeyError(f"{cls.__name__} settings lack {missing}")
        return cls(**{f.name: block[f.name] for f in fields(cls) if f.name in block})


@dataclass(frozen=True)
class Splits(_FromConfig):
    """Events of the independent training, test and evaluation samples, the particle
    slots per event, and the equal jet-mass intervals of the segmentation labels."""

    train_events: int
    test_events: int
    eval_events: int
    max_particles: int
    mass_bins: int = MASS_BINS


@dataclass(frozen=True)
class Network(_FromConfig):
    """ABCNet's GAPLayer neighbours, embedding size E and pooling, and the jet-mass
    intervals it classifies (`mass_bins` + 1 classes with the padding)."""

    neighbours: int
    embedding_size: int
    pooling: str
    mass_bins: int = MASS_BINS


@dataclass(frozen=True)
class Training(_FromConfig):
    """The two UCluster phases: batch size, learning-rate schedule, focal-loss gamma,
    pretraining epochs, and for the clustering phase its epochs, beta and alpha, whether
    batch normalisation keeps its running statistics (`freeze_norm`), and the clustering
    space: the embedding beside the global input features named in
    `cluster_space_features` (`GLOBAL_FEATURES`), weighted by `cluster_space_weight`, all
    standardised over the training events (`phases.ClusterSpace`; none: the embedding)."""

    batch_size: int
    lr: float
    lr_halving_epochs: int
    lr_min: float
    gamma: float
    pretrain_epochs: int
    cluster_epochs: int = 0
    beta: float = 0.0
    alpha_start: float = 1.0
    alpha_step: float = 0.0
    freeze_norm: bool = False
    cluster_space_features: tuple[str, ...] = ()
    cluster_space_weight: float = 1.0

    def __post_init__(self):
        unknown = sorted(set(self.cluster_space_features) - set(GLOBAL_FEATURES))
        if unknown:
            raise ValueError(f"cluster_space_features: {unknown} are not global features "
                             f"({', '.join(GLOBAL_FEATURES)})")
        object.__setattr__(self, "cluster_space_features", tuple(self.cluster_space_features))

    def pretrain_settings(self) -> phases.PretrainSettings:
        return phases.PretrainSettings(epochs=self.pretrain_epochs, batch_size=self.batch_size,
                                       schedule=self._schedule())

    def cluster_settings(self) -> phases.ClusterSettings:
        return phases.ClusterSettings(
            epochs=self.cluster_epochs, batch_size=self.batch_size, beta=self.beta,
            alpha_start=self.alpha_start, alpha_step=self.alpha_step,
            schedule=self._schedule(), first_schedule_epoch=self.pretrain_epochs,
            freeze_norm=self.freeze_norm, space_key="global_features",
            space_columns=tuple(GLOBAL_FEATURES.index(name)
                                for name in self.cluster_space_features),
            space_weight=self.cluster_space_weight)

    def _schedule(self) -> Schedule:
        return Schedule(self.lr, self.lr_halving_epochs, self.lr_min)


# What the network reads; the other arrays of a split (mjj, label, raw globals, jet) are
# for the analysis of the clusters.
ARRAYS = ("features", "mask", "mass_class", "global_features")
GLOBAL_COUNT = 4


def split_sizes(splits: Splits) -> dict[str, int]:
    return {split: getattr(splits, f"{split}_events") for split in SPLITS}


def split_rows(events: int, sizes: dict[str, int], seed: int,
               source: str = "dijets table") -> dict[str, np.ndarray]:
    """Disjoint random rows for each split, `sizes[split]` of them, from `events` rows, in
    random order (so any leading block of a split is a random sample too)."""
    wanted = sum(sizes.values())
    if wanted > events:
        raise ValueError(f"{source}: the anomaly splits need {wanted} events "
                         f"({', '.join(f'{k} {v}' for k, v in sizes.items())}), the table "
                         f"has {events}; lower anomaly.*_events or generate more dijets")
    order = np.random.default_rng([seed, 6]).permutation(events)
    bounds = np.cumsum([0, *sizes.values()])
    return {split: order[a:b] for split, a, b in zip(sizes, bounds[:-1], bounds[1:],
                                                                strict=True)}


def prepare(table: pa.Table, sizes: Splits, radius: float, seed: int,
            source: str = "dijets table") -> tuple[dict[str, dict], dict]:
    """({split: arrays}, standardizers): each split's `dijet_inputs` with the particle and
    global features standardised by constants fitted on the training split. The raw global
    features stay as ``global_raw``."""
    rows = split_rows(table.num_rows, split_sizes(sizes), seed, source)
    splits = {split: dijet_inputs(table.take(chosen), sizes.max_particles, radius,
                                  bins=sizes.mass_bins, source=source)
              for split, chosen in rows.items()}
    train_split = splits["train"]
    particles = Standardizer.fit(train_split["features"], train_split["mask"])
    every_event = np.ones(len(train_split["label"]), bool)
    globals_ = Standardizer.fit(train_split["global_features"], every_event, tied=())
    for arrays in splits.values():
        arrays["features"] = particles.transform(arrays["features"], arrays["mask"])
        arrays["global_raw"] = arrays["global_features"]
        arrays["global_features"] = globals_.transform(arrays["global_features"],
                                                       np.ones(len(arrays["label"]), bool))
    return splits, {"features": particles.to_dict(), "global_features": globals_.to_dict()}


def first(arrays: dict[str, np.ndarray], events: int) -> dict[str, np.ndarray]:
    """The first `events` events of a split: a random subset, as a split's rows are in
    random order (the smaller samples of the significance scan)."""
    available = len(arrays["label"])
    if not 0 < events <= available:
        raise ValueError(f"asked for {events} events of a split of {available}")
    return {name: values[:events] for name, values in arrays.items()}


def tensors(arrays: dict[str, np.ndarray]) -> Batch:
    return {name: torch.from_numpy(np.ascontiguousarray(arrays[name])) for name in ARRAYS}


def new_model(network: Network) -> ABCNet:
    """ABCNet with Fig. 1's red parts: tiled global features and per-particle outputs."""
    return ABCNet(in_features=len(PARTICLE_FEATURES), num_classes=network.mass_bins + 1,
                  k=network.neighbours, embedding_size=network.embedding_size,
                  pooling=network.pooling, global_features=GLOBAL_COUNT, per_particle=True)


def save_model(path, model: ABCNet, network: Network, centroids: torch.Tensor | None = None,
               history: list | None = None,
               space: phases.ClusterSpace | None = None) -> None:
    """`space`: the clustering space of the centroids, where it is not the embedding."""
    model_file.save(path, model, asdict(network), centroids, history,
                    cluster_space=space.to_dict() if space is not None else None)


def load_model(path, device: torch.device) -> tuple[ABCNet, torch.Tensor]:
    """(model, centroids) from `save_model`'s file; centroids are empty if none."""
    return model_file.load(path, device, lambda state: new_model(Network.from_config(state)))


def load_space(path) -> phases.ClusterSpace | None:
    """The clustering space `save_model` stored with the centroids; None: the embedding."""
    state = model_file.cluster_space(path)
    return phases.ClusterSpace.from_dict(state) if state is not None else None


def _segmentation_loss(model: ABCNet, gamma: float) -> phases.TaskLoss:
    """The anomaly task: the per-particle focal loss of the jet-mass class, averaged over
    the real particles."""

    def task_loss(batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits, embedding = model(batch["features"], batch["mask"], batch["global_features"])
        return (focal_loss(logits, batch["mass_class"], gamma=gamma, mask=batch["mask"]),
                embedding)

    return task_loss


def pretrain(train_arrays: dict, network: Network, training: Training, seed: int,
             device: torch.device, checkpoints) -> tuple[ABCNet, list[dict]]:
    """ABCNet trained on the per-particle jet-mass classes with the focal loss alone."""
    torch.manual_seed(seed)
    model = new_model(network)
    history = phases.pretrain(model, tensors(train_arrays),
                              _segmentation_loss(model, training.gamma),
                              training.pretrain_settings(),
                              seed, device, checkpoints)
    return model, history


def train_clustering(model: ABCNet, train_arrays: dict, training: Training, clusters: int,
                     seed: int, device: torch.device, checkpoints
                     ) -> tuple[torch.Tensor, phases.ClusterSpace | None, list[dict]]:
    """UCluster's joint phase with K = `clusters` (`phases.train_clustering_in_space`):
    (centroids, their clustering space or None for the embedding, history)."""
    return phases.train_clustering_in_space(model, tensors(train_arrays),
                                            _segmentation_loss(model, training.gamma),
                                            training.cluster_settings(), clusters, seed,
                                            device, checkpoints)


def assign(model: ABCNet, centroids: torch.Tensor, arrays: dict, batch_size: int,
           device: torch.device,
           space: phases.ClusterSpace | None = None) -> dict[str, np.ndarray]:
    """The embedding and nearest-centroid cluster of every event of a split, with what the
    analysis of the clusters needs: mjj, label and the raw global features. `space`: the
    clustering space the centroids live in (None: the embedding)."""
    embedding = phases.embeddings(model, tensors(arrays), batch_size, device)
    clusters = evaluation.nearest_centroid(phases.in_space(space, embedding, arrays),
                                           centroids.cpu().numpy())
    return {"embedding": embedding, "cluster": clusters.astype(np.int64),
            "mjj": arrays["mjj"], "label": arrays["label"], "global_raw": arrays["global_raw"]}


def assigned_split(clusters_file: dict[str, np.ndarray], split: str) -> dict[str, np.ndarray]:
    """One split's `assign` arrays out of the evaluation stage's file, where they are
    stored as ``<split>_<name>`` beside the ``centroids``."""
    prefix = f"{split}_"
    arrays = {name.removeprefix(prefix): values for name, values in clusters_file.items()
              if name.startswith(prefix)}
    if not arrays:
        raise ValueError(f"no {split} arrays among {sorted(clusters_file)}")
    return arrays
