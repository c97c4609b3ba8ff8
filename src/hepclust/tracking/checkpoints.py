"""The files the tracking stages hand to each other: trained modules (their state dict
with the keyword arguments that rebuild them) and per-event graphs, both plain tensors,
dicts and numbers, so that ``torch.load(..., weights_only=True)`` reads them."""

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from hepclust.errors import InputError
from hepclust.io.parquet import atomic_path
from hepclust.tracking.edge_filter import EdgeFilter
from hepclust.tracking.embedding import HitEmbedding
from hepclust.tracking.gnn import ClusteringGNN
from hepclust.tracking.links import LinkScorer
from hepclust.tracking.refinement import edge_classifier
from hepclust.tracking.split_stop import Split, Stop

BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "embedding": HitEmbedding,
    "filter": EdgeFilter,
    "refinement": edge_classifier,
    "gnn": ClusteringGNN,
    "split": Split,
    "stop": Stop,
    "links": LinkScorer,
}


def save_module(path: str | Path, kind: str, module: nn.Module, arguments: dict,
                history: list[dict] | None = None) -> None:
    """Write `module` (built as ``BUILDERS[kind](**arguments)``) and its training history."""
    if kind not in BUILDERS:
        raise ValueError(f"unknown module kind {kind!r}")
    state = {name: tensor.detach().cpu() for name, tensor in module.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save({"kind": kind, "arguments": arguments, "state_dict": state,
                    "history": history or []}, tmp)


def _load(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(path, f"not a readable tracking checkpoint ({err})") from err


def load_module(path: str | Path, kind: str, device: torch.device | str = "cpu") -> nn.Module:
    """The module of kind `kind` saved at `path`, on `device`, in evaluation mode."""
    saved = _load(path)
    if saved.get("kind") != kind:
        raise InputError(path, f"holds a {saved.get('kind')!r} module, expected {kind!r}")
    arguments = {k: tuple(v) if isinstance(v, list) else v
                 for k, v in saved["arguments"].items()}
    module = BUILDERS[kind](**arguments)
    module.load_state_dict(saved["state_dict"])
    return module.to(device).eval()


def module_arguments(path: str | Path) -> dict:
    return _load(path)["arguments"]


def save_graphs(path: str | Path, graphs: dict[int, torch.Tensor],
                dtype: torch.dtype = torch.int64) -> None:
    """Write one tensor per event id: (2, E) edges as int64, or (with `dtype`) values
    per edge."""
    with atomic_path(path) as tmp:
        torch.save({str(event): edges.detach().cpu().to(dtype)
                    for event, edges in graphs.items()}, tmp)


def load_graphs(path: str | Path, event_ids: list[int] | None = None) -> dict[int, torch.Tensor]:
    """The graphs of `save_graphs` (those of `event_ids` only, if given; each must be there)."""
    saved = _load(path)
    graphs = {int(event): edges for event, edges in saved.items()}
    if event_ids is None:
        return graphs
    missing = [e for e in event_ids if e not in graphs]
    if missing:
        raise InputError(path, f"has no graph for event(s) {missing[:5]}")
    return {e: graphs[e] for e in event_ids}
