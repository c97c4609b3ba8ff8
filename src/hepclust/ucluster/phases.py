"""UCluster's two training phases, shared by the jets and the anomaly tasks (PRD 103,
092007, Sec. III): pretraining on the task's focal loss alone; then k-means on the
training embeddings initialises K centroids, and the network and the centroids train
together on L_task + beta * L_cluster, alpha growing every epoch.

A task gives its network, its tensors and `task_loss(batch) -> (loss, embedding)`."""

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from hepclust.ucluster import evaluation
from hepclust.ucluster.losses import cluster_loss
from hepclust.ucluster.training import Batch, Schedule, predict, train

TaskLoss = Callable[[Batch], tuple[torch.Tensor, torch.Tensor]]


def schedule(settings: dict) -> Schedule:
    return Schedule(settings["lr"], settings["lr_halving_epochs"], settings["lr_min"])


def pretrain(model: nn.Module, data: Batch, task_loss: TaskLoss, settings: dict, seed: int,
             device: torch.device, checkpoints) -> list[dict]:
    """The task loss alone for `pretrain_epochs` epochs; the history."""
    return train(model, data, lambda batch, epoch: task_loss(batch)[0],
                 settings["pretrain_epochs"], settings["batch_size"], checkpoints, seed, device,
                 schedule(settings), desc="pretrain")


def embeddings(model: nn.Module, data: Batch, settings: dict,
               device: torch.device) -> np.ndarray:
    _, embedding = predict(model, data, 4 * settings["batch_size"], device)
    return embedding.numpy()


def train_clustering(model: nn.Module, data: Batch, task_loss: TaskLoss, settings: dict,
                     clusters: int, seed: int, device: torch.device,
                     checkpoints) -> tuple[torch.Tensor, list[dict]]:
    """k-means (K = `clusters`) on the embeddings of `data` initialises the centroids; then
    the task loss plus beta times the cluster loss for `cluster_epochs` epochs, the learning
    rate schedule going on from the pretraining's. The trained centroids and the history."""
    start = evaluation.kmeans(embeddings(model, data, settings, device), clusters,
                              seed).cluster_centers_
    centroids = nn.Parameter(torch.tensor(start, dtype=torch.float32, device=device))

    def loss(batch: Batch, epoch: int) -> torch.Tensor:
        task, embedding = task_loss(batch)
        alpha = settings["alpha_start"] + settings["alpha_step"] * epoch
        return task + settings["beta"] * cluster_loss(embedding, centroids, alpha)

    history = train(model, data, loss, settings["cluster_epochs"], settings["batch_size"],
                    checkpoints, seed, device, schedule(settings), extra=[centroids],
                    first_schedule_epoch=settings["pretrain_epochs"],
                    desc=f"clustering K={clusters}")
    return centroids.detach(), history
