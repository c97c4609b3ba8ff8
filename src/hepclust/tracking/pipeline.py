"""The clustering GNN's stages chained on one event (Choma's thesis, chapter 2): embed the
hits, join neighbours in the embedding, keep the edges the refinement MLP believes, run
the GNN on that graph (its input the hit features and the embedding) and divide its
output into tracks with Split and Stop, timing each stage.

The GNN passes messages both ways along each refined edge; its hinge loss is taken over
the wider candidate graph of the embedding (the evaluation graph of Sec. 2.5.5). The
Split module starts from one cluster per event, or (``initial="components"``) from the
connected components of the refined graph, which the thesis does not do but which saves
the first splits of an event whose graph already falls apart into pieces. The hits that
division leaves in tiny clusters then go again (`hepclust.tracking.recluster`, the
thesis's Sec. 4.3).
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import torch
from torch import nn

from hepclust.tracking.baselines import connected_components
from hepclust.tracking.edge_filter import EdgeFilter
from hepclust.tracking.embedding import embed
from hepclust.tracking.gnn import ClusteringGNN, GraphEvent, pair_logits
from hepclust.tracking.graph import neighbour_graph
from hepclust.tracking.hierarchical import ClusterEvent, Clustering, hierarchical_clustering
from hepclust.tracking.hit_features import TrackingEvent, detector_layers
from hepclust.tracking.layer_graph import LayerPairGraph
from hepclust.tracking.layer_union import SameLayerRule, layer_union
from hepclust.tracking.links import link_scores
from hepclust.tracking.recluster import recluster_small
from hepclust.tracking.refinement import edge_probabilities
from hepclust.tracking.resplit import resplit_components
from hepclust.ucluster.training import reuse_freed_memory

Initial = Literal["event", "components", "resplit", "layer_union"]
STAGES = ("embedding", "graph", "filter", "refinement", "links", "gnn", "clustering",
          "reclustering")


Builder = Literal["embedding", "layer_pairs"]


@dataclass(frozen=True)
class GraphSettings:
    """How the candidate graph is built, from the k nearest and/or the radius in the
    embedding or (``builder="layer_pairs"``) from the learned layer-pair windows
    (`hepclust.tracking.layer_graph`), the edge filter's cap per hit, then the
    refinement's probability threshold."""

    k: int | None = None
    radius: float | None = 0.4
    threshold: float = 0.5
    builder: Builder = "embedding"
    filter_max_per_hit: int | None = None  # the edge filter's cap per hit and side
    filter_max_gap: float | None = None  # and its largest logit gap below the hit's best


@dataclass(frozen=True)
class ClusteringSettings:
    initial: Initial = "components"
    threshold: float = 0.5  # Split: a point goes right above it
    stop_threshold: float = 0.5
    min_size: int = 3
    max_depth: int = 32
    edge_threshold: float | None = None  # components of the GNN's edges above it; None: refined
    resplit_thresholds: tuple[float, ...] = (0.95, 0.97, 0.98, 0.99, 0.995, 0.998)
    resplit_max_hits: int = 20
    same_layer_mm: float = 15.0  # layer_union: one cluster's hits on one layer lie closer
    best_links_first: bool = False  # layer_union: the mutual best links go first
    one_link_per_side: bool = False  # layer_union: each hit joins one hit outward, one inward
    aligned_mm: float = 0.0  # layer_union: same-layer hits this close join if aligned
    aligned_across_mm: float = 5.0  # with the origin, to within this
    recluster_max_hits: int = 0  # clusters this small go again after Split/Stop (0: none)
    recluster_min_probability: float = 0.03  # through filtered edges with p above it


@dataclass(frozen=True)
class Models:
    embedding: nn.Module
    refinement: nn.Module
    gnn: nn.Module
    split: nn.Module
    stop: nn.Module | None
    layer_pairs: LayerPairGraph | None = None
    links: nn.Module | None = None  # the union's order (hepclust.tracking.links)
    edge_filter: EdgeFilter | None = None  # drops edges before the refinement


def message_edges(pairs: torch.Tensor) -> torch.Tensor:
    """Both directions of each unordered pair (2, E) -> (2, 2E), for message passing."""
    return torch.cat([pairs, pairs.flip(0)], dim=1)


def gnn_input(event: TrackingEvent, embedding: torch.Tensor) -> torch.Tensor:
    """The GNN's input: the hit features concatenated with the stage-1 embedding (Eq. 2.18)."""
    return torch.cat([event.features.to(embedding.device), embedding], dim=1)


def initial_partition(refined: torch.Tensor, num_hits: int, clustering: ClusteringSettings,
                      device: torch.device | str, probability: torch.Tensor | None = None,
                      event: TrackingEvent | None = None) -> torch.Tensor | None:
    """The Split module's starting clusters (n,), or None for one cluster of all hits:
    the connected components of the `refined` edges, those components re-split by the
    edges' refinement `probability` (``initial="resplit"``, `resplit_components`), or
    the edges joined in decreasing probability under the one-hit-per-layer rule on the
    `event`'s hits (``initial="layer_union"``, `layer_union`)."""
    if clustering.initial == "event":
        return None
    if clustering.initial == "components":
        return torch.from_numpy(connected_components(refined, num_hits)).to(device)
    if clustering.initial not in ("resplit", "layer_union"):
        raise ValueError(f"initial must be 'event', 'components', 'resplit' or "
                         f"'layer_union', not {clustering.initial!r}")
    if probability is None:
        raise ValueError(f"initial {clustering.initial!r} needs the refined edges' "
                         "probabilities")
    if clustering.initial == "resplit":
        labels = resplit_components(refined, probability, num_hits,
                                    clustering.resplit_thresholds, clustering.resplit_max_hits)
    elif event is None:
        raise ValueError("initial 'layer_union' needs the event's hits")
    else:
        labels = layer_union(refined, probability, detector_layers(event.features),
                             event.positions, clustering.same_layer_mm,
                             clustering.best_links_first, clustering.one_link_per_side,
                             clustering.aligned_mm, clustering.aligned_across_mm)
    return torch.from_numpy(labels).to(device)


def candidate_edges(event: TrackingEvent, embedding: torch.Tensor, graph: GraphSettings,
                    layer_pairs: LayerPairGraph | None = None) -> torch.Tensor:
    """The event's candidate graph (2, E) as `graph.builder` says."""
    if graph.builder == "embedding":
        return neighbour_graph(embedding, graph.k, graph.radius)
    if graph.builder != "layer_pairs":
        raise ValueError(f"builder must be 'embedding' or 'layer_pairs', not {graph.builder!r}")
    if layer_pairs is None:
        raise ValueError("the layer_pairs builder needs the learned layer pairs")
    return layer_pairs.edges(event)


def graph_event(event: TrackingEvent, embedding: torch.Tensor, candidates: torch.Tensor,
                refined: torch.Tensor, clustering: ClusteringSettings,
                probability: torch.Tensor | None = None) -> GraphEvent:
    """The GNN's view of one event; the loss runs over the candidate edges."""
    device = embedding.device
    positions = event.positions.to(device)
    return GraphEvent(x=gnn_input(event, embedding), edge_index=message_edges(refined.to(device)),
                      particle=event.particle_id.to(device),
                      eval_edge_index=candidates.to(device),
                      initial=initial_partition(refined, len(event), clustering, device,
                                                probability, event),
                      azimuth=torch.atan2(positions[:, 1], positions[:, 0]))


def gnn_edges(gnn: ClusteringGNN, x: torch.Tensor, refined: torch.Tensor,
              threshold: float | None) -> tuple[torch.Tensor, torch.Tensor]:
    """(the GNN's output on the refined pairs (2, m), the pairs its last layer's kernel
    classifies above `threshold`: all of them if it is None)."""
    output, logits = gnn.with_logits(x, message_edges(refined))
    if threshold is None:
        return output, refined
    probability = torch.sigmoid(pair_logits(logits[-1], refined.shape[1]))
    return output, refined[:, probability > threshold]


def _classified_start(gnn: ClusteringGNN, graph: GraphEvent,
                      clustering: ClusteringSettings) -> tuple[torch.Tensor, GraphEvent]:
    """(the GNN's output, `graph` with Split's starting clusters the components of the
    GNN's classified edges, as given when Split starts from one cluster or no threshold
    is set)."""
    if graph.initial is None or clustering.edge_threshold is None:
        return gnn(graph.x, graph.edge_index), graph
    refined = graph.edge_index[:, :graph.edge_index.shape[1] // 2]  # `message_edges` layout
    output, kept = gnn_edges(gnn, graph.x, refined, clustering.edge_threshold)
    return output, replace(graph, initial=initial_partition(
        kept, len(graph.x), replace(clustering, initial="components"), graph.x.device))


@torch.no_grad()
def restarted(gnn: ClusteringGNN, graph: GraphEvent,
              clustering: ClusteringSettings) -> GraphEvent:
    """`graph` with Split's starting clusters from the frozen GNN (`_classified_start`)."""
    if graph.initial is None or clustering.edge_threshold is None:
        return graph  # without the GNN's work
    gnn.eval()
    return _classified_start(gnn, graph, clustering)[1]


@torch.no_grad()
def cluster_event(gnn: ClusteringGNN, graph: GraphEvent, weight: torch.Tensor,
                  clustering: ClusteringSettings) -> ClusterEvent:
    """The Split and Stop modules' view of one event: the frozen GNN's output, from the
    components of its classified edges (`_classified_start`)."""
    gnn.eval()
    output, graph = _classified_start(gnn, graph, clustering)
    return ClusterEvent(features=output.detach(), particle=graph.particle,
                        initial=graph.initial, hit_weight=weight.to(graph.x.device))


def _synchronised(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Stopwatch:
    """Seconds spent in each named stage (GPU work waited for)."""

    device: torch.device
    seconds: dict[str, float] = field(default_factory=dict)

    def run(self, stage: str, work: Callable, *args, **kwargs):
        _synchronised(self.device)
        began = time.perf_counter()
        result = work(*args, **kwargs)
        _synchronised(self.device)
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - began
        return result


@dataclass(frozen=True)
class Reconstruction:
    """One event through every stage: tracks, intermediate outputs and stage timings."""

    track_id: np.ndarray  # Split/Stop's tracks, their tiny clusters re-clustered
    embedding: torch.Tensor
    candidates: torch.Tensor
    filtered: torch.Tensor  # the candidates that pass the edge filter (all without one)
    refined: torch.Tensor
    classified: torch.Tensor
    gnn_output: torch.Tensor
    initial: torch.Tensor | None
    clustering: Clustering
    seconds: dict[str, float]


@torch.no_grad()
def reconstruct(event: TrackingEvent, models: Models, graph: GraphSettings,
                clustering: ClusteringSettings, device: torch.device | str) -> Reconstruction:
    """Find the tracks of one event with the trained `models`, timing each stage."""
    device = torch.device(device)
    reuse_freed_memory()
    event = event.to(device)
    for module in (models.embedding, models.edge_filter, models.refinement, models.gnn,
                   models.split, models.stop, models.links):
        if module is not None:
            module.to(device).eval()
    clock = Stopwatch(device)
    embedding = clock.run("embedding", embed, models.embedding, event.features, device)
    candidates = clock.run("graph", candidate_edges, event, embedding, graph,
                           models.layer_pairs)

    filtered = (candidates if models.edge_filter is None
                else clock.run("filter", models.edge_filter.keep, event, candidates,
                               graph.filter_max_per_hit, graph.filter_max_gap))

    filtered_probability = clock.run("refinement", edge_probabilities, models.refinement,
                                     event, filtered, device)
    kept = filtered_probability > graph.threshold
    refined, probability = filtered[:, kept], filtered_probability[kept]
    if models.links is not None:
        probability = clock.run("links", link_scores, models.links, event.positions,
                                detector_layers(event.features), refined, probability)
    gnn_output, classified = clock.run("gnn", gnn_edges, models.gnn,
                                       gnn_input(event, embedding), refined,
                                       clustering.edge_threshold)

    def divide() -> tuple[Clustering, torch.Tensor | None]:
        initial = initial_partition(classified, len(event), clustering, device,
                                    None if clustering.edge_threshold is not None
                                    else probability, event)
        return hierarchical_clustering(
            gnn_output, models.split, models.stop, initial, clustering.threshold,
            clustering.stop_threshold, clustering.min_size, clustering.max_depth,
            device), initial

    found, initial = clock.run("clustering", divide)

    def recluster() -> np.ndarray:
        if not clustering.recluster_max_hits:
            return found.track_id
        rule = SameLayerRule(event.positions, clustering.same_layer_mm, clustering.aligned_mm,
                             clustering.aligned_across_mm)
        return recluster_small(found.track_id, filtered, filtered_probability,
                               detector_layers(event.features), rule,
                               clustering.recluster_max_hits,
                               clustering.recluster_min_probability)

    track_id = clock.run("reclustering", recluster)
    return Reconstruction(track_id, embedding, candidates, filtered, refined, classified,
                          gnn_output, initial, found, clock.seconds)
