"""A trained UCluster network on disk: its weights, the hyperparameters that rebuild it,
the centroids of its clustering phase (empty before that phase), its training history and
optionally its optimiser state (which the next phase carries on with) and the clustering
space of the centroids (where it is not the embedding).
The jets and the anomaly tasks differ only in the hyperparameters and the builder."""

from collections.abc import Callable

import torch
from torch import nn

from hepclust.io.parquet import atomic_path


def save(path, model: nn.Module, hyperparameters: dict,
         centroids: torch.Tensor | None = None, history: list | None = None,
         optimizer: dict | None = None, cluster_space: dict | None = None) -> None:
    """`cluster_space`: the map into the space the centroids live in, where that is not
    the embedding (`hepclust.ucluster.phases.ClusterSpace.to_dict`)."""
    state = {"model": model.state_dict(), **hyperparameters,
             "centroids": centroids.detach().cpu() if centroids is not None else torch.empty(0),
             "history": history or []}
    if optimizer is not None:
        state["optimizer"] = optimizer
    if cluster_space is not None:
        state["cluster_space"] = cluster_space
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load(path, device: torch.device,
         build: Callable[[dict], nn.Module]) -> tuple[nn.Module, torch.Tensor]:
    """(model, centroids) from `save`'s file; `build` makes the network from the saved
    hyperparameters."""
    state = torch.load(path, map_location=device, weights_only=True)
    model = build(state)
    model.load_state_dict(state["model"])
    return model.to(device), state["centroids"]


def optimizer(path) -> dict | None:
    """The optimiser state `save` stored with the model, None if it stored none."""
    return torch.load(path, map_location="cpu", weights_only=True).get("optimizer")


def cluster_space(path) -> dict | None:
    """The clustering space `save` stored with the centroids, None if it stored none."""
    return torch.load(path, map_location="cpu", weights_only=True).get("cluster_space")
