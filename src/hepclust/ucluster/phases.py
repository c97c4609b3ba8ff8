"""UCluster's two training phases, shared by the jets and the anomaly tasks (PRD 103,
092007, Sec. III): pretraining on the task's focal loss alone; then K centroids are
initialised on the training embeddings, and the network and the centroids train together
on L_task + beta * L_cluster, alpha growing every epoch.

A task gives its network, its tensors and `task_loss(batch) -> (loss, embedding)`. The
settings are `PretrainSettings` and `ClusterSettings` (`pretrain_settings` and
`cluster_settings` make them from a config section).

Centroid initialisations (`INITS`):

- ``kmeans``: k-means on the embeddings, the paper's.
- ``kl``: k-means with the KL divergence on the pretrained head's class probabilities
  (`kl_kmeans`); each centroid is the mean embedding of its cluster's examples. The head
  reads the embedding, so clustering what it predicts from it starts the joint phase from
  the partition the task loss already separates (for the jets, mass windows).
- ``kl_fit``: the same KL partition; the centroids are those whose nearest-centroid
  partition of the embeddings reproduces it best (`fit_centroids`), since the means'
  nearest-centroid partition is not the KL one (the joint phase's cluster loss then pulls
  every example towards its nearest centroid, so the start is that partition).

The clustering space is the embedding itself (the paper), or with
`ClusterSettings.space_columns` a `ClusterSpace`: the embedding beside chosen input
features, each coordinate standardised over the training examples and weighted; the
centroids, the cluster loss and the nearest-centroid assignment then live in that space.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, get_args

import numpy as np
import torch
from torch import nn

from hepclust.ucluster import evaluation
from hepclust.ucluster.losses import cluster_loss
from hepclust.ucluster.training import Batch, Schedule, predict, train

TaskLoss = Callable[[Batch], tuple[torch.Tensor, torch.Tensor]]
Init = Literal["kmeans", "kl", "kl_fit"]
INITS: tuple[str, ...] = get_args(Init)
# Examples over which the two loss terms are averaged to balance beta.
BALANCE_EXAMPLES = 4096
# Examples whose embeddings the centroids are re-fitted on within an epoch (`refit_steps`).
REFIT_EXAMPLES = 2048
# The key under which the joint phase adds each example's start embedding to the batches.
START_EMBEDDING = "start_embedding"


@dataclass(frozen=True)
class PretrainSettings:
    """The pretraining phase: `epochs` of the task loss alone."""

    epochs: int
    batch_size: int
    schedule: Schedule = field(default_factory=Schedule)


@dataclass(frozen=True)
class ClusterSettings:
    """The joint phase. `beta` None: balanced, the task loss over the cluster loss at the
    start of the phase (the paper: beta such that both terms are the same size), times
    `beta_factor`. The
    learning rate schedule goes on from epoch `first_schedule_epoch` (the pretraining's
    length), unless `restart_schedule`, which starts it again at `schedule.lr`.
    `freeze_norm`: batch normalisation uses its running statistics in this phase, so the
    embeddings the centroids train on are the ones events are assigned with.
    `refit_steps` > 0: every that many steps the centroids are re-fitted (`fit_centroids`)
    to the start's partition on the first REFIT_EXAMPLES examples' current embeddings,
    and on every example's at the end of each epoch, so they follow the embedding as the
    network moves it; 0: they train by gradient alone (the paper).
    `embedding_anchor` mu > 0: adds mu |f - f_start|^2 / <|f_start|^2> to the loss, the
    squared distance of each example's embedding from its embedding at the start of the
    phase, in units of the start's mean squared norm over the examples. With frozen batch
    norms nothing else holds the embedding's scale (the head's norm makes the task loss
    blind to it), and Adam moves every weight by about lr a step whatever its gradient, so
    the phase can run away (docs/ucluster.md); the anchor acts on the embedding itself,
    where a pull on the weights does not (a frozen norm with a small running variance
    amplifies any change of the weights before it). 0: none (the paper).
    `space_columns` non-empty: the centroids live in a `ClusterSpace` of the embedding and
    these columns of the batches' `space_key` tensor (N, F), the extra features weighted
    by `space_weight`; empty: in the embedding (the paper)."""

    epochs: int
    batch_size: int
    beta: float | None
    alpha_start: float
    alpha_step: float
    schedule: Schedule = field(default_factory=Schedule)
    first_schedule_epoch: int = 0
    init: Init = "kmeans"
    restart_schedule: bool = False
    freeze_norm: bool = False
    refit_steps: int = 0
    beta_factor: float = 1.0
    embedding_anchor: float = 0.0
    space_key: str = "global_features"
    space_columns: tuple[int, ...] = ()
    space_weight: float = 1.0

    def __post_init__(self):
        if self.init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")
        if self.refit_steps < 0:
            raise ValueError(f"refit_steps must be >= 0, got {self.refit_steps}")
        if not self.embedding_anchor >= 0:
            raise ValueError(f"embedding_anchor must be >= 0, got {self.embedding_anchor}")
        if not self.space_weight > 0:
            raise ValueError(f"space_weight must be > 0, got {self.space_weight}")
        if len(set(self.space_columns)) != len(self.space_columns) or any(
                column < 0 for column in self.space_columns):
            raise ValueError("space_columns must be distinct column indices >= 0, got "
                             f"{list(self.space_columns)}")


@dataclass(frozen=True, eq=False)
class ClusterSpace:
    r"""The space the centroids live in: each example's embedding f (E) beside columns
    `columns` of its input tensor `key` (N, F), every coordinate standardised and the
    extra ones weighted,

    .. math:: x = \left(\frac{f - m_f}{s_f},\; w \frac{g - m_g}{s_g}\right),

    written as x = (concat(f, g) - `shift`) / `scale` (`scale` holds s_g / w). The
    constants come from the training examples at the start of the joint phase (`fit`) and
    stay fixed, so the cluster loss, the centroids and every later assignment use one map.
    """

    key: str
    columns: tuple[int, ...]
    shift: np.ndarray
    scale: np.ndarray

    @classmethod
    def fit(cls, embedding: np.ndarray, extra: np.ndarray, key: str,
            columns: tuple[int, ...], weight: float) -> "ClusterSpace":
        """Standardisation constants of `embedding` (N, E) and `extra[:, columns]` over
        these examples; a coordinate that does not vary keeps scale 1."""
        values = np.concatenate([np.asarray(embedding, np.float64),
                                 _columns(np.asarray(extra, np.float64), key, columns)],
                                axis=1)
        spread = values.std(axis=0)
        spread = np.where(spread > 0, spread, 1.0)
        spread[embedding.shape[1]:] /= weight
        return cls(key, tuple(columns), values.mean(axis=0), spread)

    def coordinates(self, embedding, extra):
        """The space's coordinates (N, E + len(columns)) of `embedding` (N, E) and the
        examples' `key` tensor (N, F): a torch tensor for torch inputs (differentiable in
        the embedding), else a NumPy array."""
        if isinstance(embedding, torch.Tensor):
            shift = torch.as_tensor(self.shift, dtype=embedding.dtype, device=embedding.device)
            scale = torch.as_tensor(self.scale, dtype=embedding.dtype, device=embedding.device)
            values = torch.cat([embedding, _columns(extra, self.key, self.columns)
                                .to(embedding.dtype)], dim=1)
            return (values - shift) / scale
        values = np.concatenate([embedding, _columns(np.asarray(extra), self.key,
                                                     self.columns)], axis=1)
        return ((values - self.shift) / self.scale).astype(embedding.dtype)

    def to_dict(self) -> dict:
        """Tensors and plain values for a model file (`from_dict` reads them back)."""
        return {"key": self.key, "columns": list(self.columns),
                "shift": torch.from_numpy(self.shift), "scale": torch.from_numpy(self.scale)}

    @classmethod
    def from_dict(cls, state: dict) -> "ClusterSpace":
        return cls(state["key"], tuple(int(c) for c in state["columns"]),
                   np.asarray(state["shift"], np.float64), np.asarray(state["scale"], np.float64))


def _columns(extra, key: str, columns: tuple[int, ...]):
    if extra.ndim != 2 or (columns and max(columns) >= extra.shape[1]):
        raise ValueError(f"the clustering space reads columns {list(columns)} of {key!r}, "
                         f"which has shape {tuple(extra.shape)}")
    return extra[:, list(columns)]


def schedule(settings: dict) -> Schedule:
    return Schedule(settings["lr"], settings["lr_halving_epochs"], settings["lr_min"])


def pretrain_settings(settings: dict) -> PretrainSettings:
    """From a config section (pretrain_epochs, batch_size, lr, lr_halving_epochs, lr_min)."""
    return PretrainSettings(epochs=settings["pretrain_epochs"],
                            batch_size=settings["batch_size"], schedule=schedule(settings))


def cluster_settings(settings: dict) -> ClusterSettings:
    """From a config section; `beta` "balanced" is None, `cluster_init` defaults to
    kmeans, `restart_schedule` and `freeze_norm` to false, `centroid_refit_steps` and
    `joint_embedding_anchor` to 0 where the section has none."""
    beta = settings["beta"]
    return ClusterSettings(epochs=settings["cluster_epochs"], batch_size=settings["batch_size"],
                           beta=None if beta == "balanced" else float(beta),
                           alpha_start=settings["alpha_start"],
                           alpha_step=settings["alpha_step"], schedule=schedule(settings),
                           first_schedule_epoch=settings["pretrain_epochs"],
                           init=settings.get("cluster_init", "kmeans"),
                           restart_schedule=settings.get("restart_schedule", False),
                           freeze_norm=settings.get("freeze_norm", False),
                           refit_steps=settings.get("centroid_refit_steps", 0),
                           embedding_anchor=settings.get("joint_embedding_anchor", 0.0))


def pretrain(model: nn.Module, data: Batch, task_loss: TaskLoss,
             settings: PretrainSettings, seed: int, device: torch.device,
             checkpoints) -> list[dict]:
    """The task loss alone for `settings.epochs` epochs; the history. The optimiser's
    final state is in the checkpoint (`training.optimizer_state(checkpoints)`)."""
    return train(model, data, lambda batch, epoch: task_loss(batch)[0], settings.epochs,
                 settings.batch_size, checkpoints, seed, device, settings.schedule,
                 desc="pretrain")


def embeddings(model: nn.Module, data: Batch, batch_size: int,
               device: torch.device) -> np.ndarray:
    """The embedding of every example; `batch_size` is training's, inference uses four
    times that."""
    _, embedding = predict(model, data, 4 * batch_size, device)
    return embedding.numpy()


def class_probabilities(model: nn.Module, data: Batch, batch_size: int,
                        device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """(softmax of the head's logits, embedding) of every example; per-example heads only."""
    logits, embedding = predict(model, data, 4 * batch_size, device)
    if logits.ndim != 2:
        raise ValueError("the kl initialisation needs one class prediction per example, "
                         f"got logits of shape {tuple(logits.shape)}")
    return torch.softmax(logits.double(), dim=1).numpy(), embedding.numpy()


def kl_kmeans(probabilities: np.ndarray, clusters: int, seed: int, starts: int = 20,
              iterations: int = 100) -> tuple[np.ndarray, np.ndarray]:
    r"""k-means with the KL divergence :math:`D(p_i \| c_k)` on probability vectors (N, C).

    The centre minimising the summed divergence of its members is their mean (a Bregman
    divergence), so Lloyd's iterations carry over: assign each vector to the centre of
    least divergence, move each centre to its members' mean. `starts` random starts
    (k-means++ seeding with the divergence), the one of least total divergence kept.
    Returns (labels (N,), centres (K, C)). An empty cluster is refilled with the vector
    farthest from its centre.
    """
    p = np.clip(np.asarray(probabilities, np.float64), 1e-12, None)
    p /= p.sum(axis=1, keepdims=True)
    n = len(p)
    if not 1 <= clusters <= n:
        raise ValueError(f"cannot make {clusters} clusters of {n} probability vectors")
    entropy_term = (p * np.log(p)).sum(axis=1)

    def divergence(centres):
        # >= 0 up to rounding, which the clip removes (k-means++ draws with these weights).
        return np.maximum(entropy_term[:, None] - p @ np.log(np.clip(centres, 1e-12, None)).T,
                          0.0)

    rng = np.random.default_rng(seed)
    best = None
    for _ in range(starts):
        centres = [p[rng.integers(n)]]
        for _ in range(1, clusters):
            nearest = divergence(np.array(centres)).min(axis=1)
            weights = nearest / nearest.sum() if nearest.sum() > 0 else None
            centres.append(p[rng.choice(n, p=weights)])
        centres = np.array(centres)
        labels = np.full(n, -1)
        for _ in range(iterations):
            distance = divergence(centres)
            new_labels = distance.argmin(axis=1)
            for k in np.setdiff1d(np.arange(clusters), new_labels):
                farthest = distance[np.arange(n), new_labels].argmax()
                new_labels[farthest] = k
            if np.array_equal(new_labels, labels):
                break
            labels = new_labels
            centres = np.array([p[labels == k].mean(axis=0) for k in range(clusters)])
        total = divergence(centres)[np.arange(n), labels].sum()
        if best is None or total < best[0]:
            best = (total, labels, centres)
    return best[1], best[2]


def fit_centroids(embedding: np.ndarray, labels: np.ndarray, clusters: int,
                  iterations: int = 500) -> np.ndarray:
    r"""(K, E) centroids whose nearest-centroid partition of `embedding` (N, E) reproduces
    `labels` (N,) in 0..K-1 as well as it can: the centroids and a scale a minimise the
    cross-entropy of the soft assignment :math:`\mathrm{softmax}_k(-a \|f_j - \mu_k\|)`
    (the cluster loss's) against the labels, by L-BFGS in double precision, starting from
    the labels' mean embeddings. Every label needs at least one example."""
    counts = np.bincount(labels, minlength=clusters)
    if len(counts) != clusters or (counts == 0).any():
        raise ValueError(f"every one of {clusters} clusters needs an example, got counts "
                         f"{counts.tolist()}")
    points = torch.tensor(embedding, dtype=torch.float64)
    target = torch.as_tensor(labels, dtype=torch.long)
    means = np.stack([embedding[labels == k].mean(axis=0) for k in range(clusters)])
    centroids = torch.tensor(means, dtype=torch.float64, requires_grad=True)
    # Distances in units of their spread at the start, so the scale starts near 1.
    unit = float(torch.cdist(points, centroids.detach()).std().clamp(min=1e-12))
    log_scale = torch.zeros((), dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([centroids, log_scale], max_iter=iterations,
                                  line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        logits = -log_scale.exp() * torch.cdist(points, centroids) / unit
        loss = nn.functional.cross_entropy(logits, target)
        loss.backward()
        return loss

    optimizer.step(closure)
    return centroids.detach().numpy().astype(embedding.dtype)


def initial_partition(init: Init, embedding: np.ndarray, probabilities: np.ndarray | None,
                      clusters: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(centroids (K, E), labels (N,)): where option `init` (`INITS`) starts the joint phase
    and the partition of the examples it starts from (k-means' or the KL k-means')."""
    if init == "kmeans":
        fitted = evaluation.kmeans(embedding, clusters, seed)
        return fitted.cluster_centers_, fitted.labels_
    if init in ("kl", "kl_fit"):
        if probabilities is None:
            raise ValueError(f"the {init} initialisation needs the head's class probabilities")
        labels, _ = kl_kmeans(probabilities, clusters, seed)
        if init == "kl_fit":
            return fit_centroids(embedding, labels, clusters), labels
        return np.stack([embedding[labels == k].mean(axis=0) for k in range(clusters)]), labels
    raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")


def initial_centroids(init: Init, embedding: np.ndarray, probabilities: np.ndarray | None,
                      clusters: int, seed: int) -> np.ndarray:
    """The (K, E) centroids that option `init` (`INITS`) starts the joint phase from."""
    return initial_partition(init, embedding, probabilities, clusters, seed)[0]


def balanced_beta(task_loss: float, cluster_loss_value: float) -> float:
    """The beta that makes beta * L_cluster as large as L_task (1 if L_cluster is 0)."""
    if not np.isfinite(task_loss) or not np.isfinite(cluster_loss_value):
        raise ValueError(f"loss terms must be finite, got {task_loss} and {cluster_loss_value}")
    return task_loss / cluster_loss_value if cluster_loss_value > 0 else 1.0


@torch.no_grad()
def _mean_loss_terms(model: nn.Module, data: Batch, task_loss: TaskLoss,
                     centroids: torch.Tensor, alpha: float, batch_size: int,
                     device: torch.device,
                     space: ClusterSpace | None = None) -> tuple[float, float]:
    """The task and cluster losses of the first BALANCE_EXAMPLES examples (eval mode)."""
    model.to(device).eval()
    n = min(len(next(iter(data.values()))), BALANCE_EXAMPLES)
    task_total = cluster_total = 0.0
    for start in range(0, n, 4 * batch_size):
        rows = slice(start, min(start + 4 * batch_size, n))
        batch = {name: tensor[rows].to(device) for name, tensor in data.items()}
        task, embedding = task_loss(batch)
        embedding = in_space(space, embedding, batch)
        size = rows.stop - rows.start
        task_total += float(task) * size
        cluster_total += float(cluster_loss(embedding, centroids, alpha)) * size
    return task_total / n, cluster_total / n


def train_clustering(model: nn.Module, data: Batch, task_loss: TaskLoss,
                     settings: ClusterSettings, clusters: int, seed: int,
                     device: torch.device, checkpoints,
                     start_optimizer: dict | None = None) -> tuple[torch.Tensor, list[dict]]:
    """Centroids initialised by `settings.init` (K = `clusters`) on the embeddings of
    `data`; then the task loss plus beta times the cluster loss for `settings.epochs`
    epochs. `start_optimizer`: the pretraining's Adam state, carried over to the network's
    parameters. The trained centroids and the history (each epoch also records beta).
    In the embedding only: a clustering space (`settings.space_columns`) needs
    `train_clustering_in_space`, which also returns the space's map."""
    if settings.space_columns:
        raise ValueError("settings with space_columns need train_clustering_in_space, "
                         "which returns the clustering space the centroids live in")
    centroids, _, history = train_clustering_in_space(model, data, task_loss, settings,
                                                      clusters, seed, device, checkpoints,
                                                      start_optimizer)
    return centroids, history


def train_clustering_in_space(model: nn.Module, data: Batch, task_loss: TaskLoss,
                              settings: ClusterSettings, clusters: int, seed: int,
                              device: torch.device, checkpoints,
                              start_optimizer: dict | None = None
                              ) -> tuple[torch.Tensor, ClusterSpace | None, list[dict]]:
    """`train_clustering` in the clustering space of `settings` (`ClusterSpace`, fitted
    on `data`'s embeddings at the start; None where `space_columns` is empty, the
    embedding itself): (centroids in that space, the space, history)."""
    if settings.init in ("kl", "kl_fit"):
        probabilities, embedding = class_probabilities(model, data, settings.batch_size,
                                                       device)
    else:
        probabilities, embedding = None, embeddings(model, data, settings.batch_size, device)
    space = None
    if settings.space_columns:
        space = ClusterSpace.fit(embedding, data[settings.space_key].numpy(),
                                 settings.space_key, settings.space_columns,
                                 settings.space_weight)
    start, labels = initial_partition(settings.init, in_space(space, embedding, data),
                                      probabilities, clusters, seed)
    centroids = nn.Parameter(torch.tensor(start, dtype=torch.float32, device=device))
    refit = _refit_hook(model, data, labels, centroids, settings, clusters, device, space)
    beta = settings.beta
    if beta is None:
        beta = settings.beta_factor * balanced_beta(*_mean_loss_terms(
            model, data, task_loss, centroids.detach(), settings.alpha_start,
            settings.batch_size, device, space))
    if settings.embedding_anchor > 0:
        start_square = float(np.square(embedding).sum(axis=1).mean())
        data = {**data, START_EMBEDDING: torch.from_numpy(np.ascontiguousarray(embedding))}

    def loss(batch: Batch, epoch: int) -> torch.Tensor:
        task, embedding = task_loss(batch)
        alpha = settings.alpha_start + settings.alpha_step * epoch
        total = task + beta * cluster_loss(in_space(space, embedding, batch), centroids, alpha)
        if settings.embedding_anchor > 0:
            moved = (embedding - batch[START_EMBEDDING]).square().sum(dim=1).mean()
            total = total + settings.embedding_anchor * moved / start_square
        return total

    first = 0 if settings.restart_schedule else settings.first_schedule_epoch
    history = train(model, data, loss, settings.epochs, settings.batch_size, checkpoints, seed,
                    device, settings.schedule, extra=[centroids], first_schedule_epoch=first,
                    desc=f"clustering K={clusters}", start_optimizer=start_optimizer,
                    freeze_norm=settings.freeze_norm, after_step=refit)
    for entry in history:
        entry["beta"] = beta
    return centroids.detach(), space, history


def in_space(space: ClusterSpace | None, embedding, examples):
    """The coordinates in `space` of the first len(`embedding`) examples of `examples`
    (a batch or a split's arrays, holding `space.key`) from their embeddings (a NumPy
    array, or a torch tensor that stays differentiable): the embedding where None."""
    if space is None:
        return embedding
    return space.coordinates(embedding, examples[space.key][:len(embedding)])


def _refit_hook(model: nn.Module, data: Batch, labels: np.ndarray, centroids: nn.Parameter,
                settings: ClusterSettings, clusters: int, device: torch.device,
                space: ClusterSpace | None = None):
    """The training loop's `after_step` that re-fits the centroids to the start partition
    `labels` (`ClusterSettings.refit_steps`); None if they train by gradient alone."""
    if settings.refit_steps == 0:
        return None
    subset = {name: tensor[:REFIT_EXAMPLES] for name, tensor in data.items()}

    def after_step(epoch: int, step: int, last: bool) -> None:
        if last:
            fitted = fit_centroids(in_space(space, embeddings(
                model, data, settings.batch_size, device), data), labels, clusters)
        elif (step + 1) % settings.refit_steps == 0:
            fitted = fit_centroids(in_space(space, embeddings(
                model, subset, settings.batch_size, device), subset),
                labels[:REFIT_EXAMPLES], clusters)
        else:
            return
        with torch.no_grad():
            centroids.copy_(torch.as_tensor(fitted, dtype=centroids.dtype, device=device))

    return after_step
