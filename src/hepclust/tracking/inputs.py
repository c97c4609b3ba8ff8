"""What the GNN and clustering stages' rules read: the training events as graphs, built
from the hits, the stage-1 embedding and the graph files of the earlier stages."""

from pathlib import Path

import torch

from hepclust.io.jsonio import read_json
from hepclust.tracking.checkpoints import load_graphs, load_module
from hepclust.tracking.events import EventTables, read_events
from hepclust.tracking.gnn import GraphEvent
from hepclust.tracking.layer_graph import LayerPairGraph
from hepclust.tracking.pipeline import ClusteringSettings, Models
from hepclust.tracking.stages import graph_events


def training_graph_events(hits: str | Path, particles: str | Path, split: str | Path,
                          embedding: str | Path, candidates: str | Path, refined: str | Path,
                          union_order: str | Path, clustering: ClusteringSettings,
                          device: torch.device) -> tuple[list[EventTables], list[GraphEvent]]:
    """(tables, GNN events) of the training events of `split`; `union_order` holds the
    refined edges' refinement probabilities or link scores, the order of the union."""
    train = read_json(split)["train"]
    tables = read_events(hits, particles, train)
    events = graph_events(load_module(embedding, "embedding", device), tables,
                          load_graphs(candidates, train), load_graphs(refined, train),
                          load_graphs(union_order, train), clustering, device)
    return tables, events


def load_models(embedding: str | Path, refinement: str | Path, gnn: str | Path,
                split: str | Path, stop: str | Path, layer_pairs: str | Path,
                device: torch.device, links: str | Path | None = None,
                edge_filter: str | Path | None = None) -> Models:
    """The trained pipeline; without `links`, the union joins edges by probability;
    without `edge_filter`, the refinement sees every candidate edge."""
    return Models(*(load_module(path, kind, device) for path, kind in (
        (embedding, "embedding"), (refinement, "refinement"), (gnn, "gnn"), (split, "split"),
        (stop, "stop"))), layer_pairs=LayerPairGraph.load(layer_pairs),
        links=None if links is None else load_module(links, "links", device),
        edge_filter=None if edge_filter is None else load_module(edge_filter, "filter", device))
