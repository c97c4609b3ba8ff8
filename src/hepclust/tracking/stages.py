"""Each training stage of the clustering GNN on a list of events, as the workflow's rules
run them: build the stage's inputs from the earlier stages' outputs, train, and return
the module with the keyword arguments that rebuild it (`checkpoints.save_module`)."""

from collections.abc import Sequence

import torch
from torch import nn
from tqdm import tqdm

from hepclust.tracking.edge_filter import EdgeFilter, train_edge_filter
from hepclust.tracking.embedding import EmbeddingSettings, embed, train_embedding
from hepclust.tracking.events import EventTables
from hepclust.tracking.gnn import ClusteringGNN, GraphEvent, train_gnn
from hepclust.tracking.graph import edge_metrics
from hepclust.tracking.hierarchical import ClusterEvent, train_end_to_end, train_split, train_stop
from hepclust.tracking.hit_features import TrackingEvent, detector_layers, same_particle
from hepclust.tracking.layer_graph import LayerPairGraph
from hepclust.tracking.links import link_features, train_link_scorer
from hepclust.tracking.pipeline import (
    ClusteringSettings,
    GraphSettings,
    candidate_edges,
    cluster_event,
    graph_event,
    restarted,
)
from hepclust.tracking.refinement import (
    RefinementSettings,
    edge_probabilities,
    train_refinement,
)
from hepclust.tracking.split_stop import Split, Stop

Trained = tuple[nn.Module, dict, list[dict]]


def tracking_events(tables: Sequence[EventTables]) -> list[TrackingEvent]:
    return [t.tracking_event() for t in tables]


def fit_embedding(events: Sequence[TrackingEvent], settings: EmbeddingSettings, seed: int,
                  device: torch.device) -> Trained:
    model, history = train_embedding(events, settings, seed, device)
    arguments = {"in_dim": int(events[0].features.shape[1]), "hidden": list(settings.hidden),
                 "embedding_dim": settings.embedding_dim}
    return model, arguments, history


def candidate_graphs(embedding: nn.Module, tables: Sequence[EventTables],
                     graph: GraphSettings, layer_pairs: LayerPairGraph,
                     device: torch.device) -> tuple[dict[int, torch.Tensor], list[dict]]:
    """Each event's candidate edges, and their size and quality."""
    graphs, rows = {}, []
    for table in tqdm(tables, desc="candidate graphs", unit="event"):
        event = table.tracking_event().to(device)
        edges = candidate_edges(event, embed(embedding, event.features, device), graph,
                                layer_pairs)
        graphs[table.event_id] = edges.cpu()
        rows.append({"event": table.name, **edge_metrics(edges, event.particle_id)})
    return graphs, rows


def fit_edge_filter(events: Sequence[TrackingEvent], candidates: Sequence[torch.Tensor],
                    hidden: Sequence[int], epochs: int, lr: float, efficiency: float, seed: int,
                    device: torch.device, hit_hidden: Sequence[int] = ()) -> Trained:
    model, history = train_edge_filter(events, candidates, hidden, epochs, lr, efficiency,
                                       seed=seed, device=device, hit_hidden=hit_hidden)
    return model, {"hit_dim": int(events[0].features.shape[1]), "hidden": list(hidden),
                   "hit_hidden": list(hit_hidden)}, history


def filtered_graphs(edge_filter: EdgeFilter, tables: Sequence[EventTables],
                    candidates: dict[int, torch.Tensor], device: torch.device,
                    max_per_hit: int | None = None) -> tuple[dict[int, torch.Tensor],
                                                             list[dict]]:
    """Each event's candidate edges that pass the filter (at most `max_per_hit` per hit
    and side, `EdgeFilter.keep`), and the graphs' size and quality."""
    graphs, rows = {}, []
    for table in tqdm(tables, desc="filtered graphs", unit="event"):
        event = table.tracking_event().to(device)
        edges = edge_filter.keep(event, candidates[table.event_id].to(device), max_per_hit)
        graphs[table.event_id] = edges.cpu()
        rows.append({"event": table.name, **edge_metrics(edges, event.particle_id)})
    return graphs, rows


def fit_refinement(events: Sequence[TrackingEvent], candidates: Sequence[torch.Tensor],
                   settings: RefinementSettings, seed: int, device: torch.device) -> Trained:
    model, history = train_refinement(events, candidates, settings, seed, device)
    return model, settings.model_arguments(int(events[0].features.shape[1])), history


def refined_graphs(refinement: nn.Module, tables: Sequence[EventTables],
                   candidates: dict[int, torch.Tensor], threshold: float,
                   device: torch.device) -> tuple[dict[int, torch.Tensor],
                                                  dict[int, torch.Tensor], list[dict]]:
    """Each event's candidate edges with p > threshold, their probabilities, and the
    graphs' size and quality."""
    graphs, probabilities, rows = {}, {}, []
    for table in tqdm(tables, desc="refined graphs", unit="event"):
        event = table.tracking_event()
        edges = candidates[table.event_id].to(device)
        probability = edge_probabilities(refinement, event, edges, device)
        kept = probability > threshold
        graphs[table.event_id] = edges[:, kept].cpu()
        probabilities[table.event_id] = probability[kept].cpu()
        rows.append({"event": table.name, **edge_metrics(edges[:, kept], event.particle_id)})
    return graphs, probabilities, rows


def fit_links(tables: Sequence[EventTables], refined: dict[int, torch.Tensor],
              probabilities: dict[int, torch.Tensor], hidden: int, epochs: int, lr: float,
              seed: int) -> tuple[nn.Module, dict, list[dict], dict[int, torch.Tensor]]:
    """The link scorer trained on the refined edges of the events of `tables` (whether
    each joins hits of one particle), its arguments and history, and its scores of those
    edges: the union's order in the later stages' training events."""
    events = {table.event_id: table.tracking_event() for table in tables}
    features, labels = [], []
    for event_id, event in events.items():
        edges = refined[event_id]
        features.append(link_features(event.positions, detector_layers(event.features), edges,
                                      probabilities[event_id]))
        labels.append(same_particle(event.particle_id, edges))
    model, history = train_link_scorer(features, labels, hidden, epochs, lr, seed=seed)
    with torch.no_grad():
        scores = {event_id: torch.sigmoid(model(event_features))
                  for event_id, event_features in zip(events, features, strict=True)}
    return model, {"hidden": hidden}, history, scores


@torch.no_grad()
def graph_events(embedding: nn.Module, tables: Sequence[EventTables],
                 candidates: dict[int, torch.Tensor], refined: dict[int, torch.Tensor],
                 probabilities: dict[int, torch.Tensor], clustering: ClusteringSettings,
                 device: torch.device) -> list[GraphEvent]:
    """The GNN's training events: input graph the refined edges, loss over the candidates."""
    events = []
    for table in tables:
        event = table.tracking_event()
        events.append(graph_event(event, embed(embedding, event.features, device),
                                  candidates[table.event_id], refined[table.event_id],
                                  clustering, probabilities[table.event_id]))
    return events


def fit_gnn(events: Sequence[GraphEvent], hidden: int, layers: int, output: int,
            kernel_hidden: int, aggr: str, epochs: int, lr: float, margin: float,
            edge_loss_weight: float, sectors: int, seed: int, device: torch.device) -> Trained:
    torch.manual_seed(seed)
    arguments = {"in_channels": int(events[0].x.shape[1]), "hidden": hidden,
                 "out_channels": output, "layers": layers, "kernel_hidden": kernel_hidden,
                 "aggr": aggr}
    gnn = ClusteringGNN(**arguments)
    history = train_gnn(gnn, events, epochs, lr, margin, seed, device, edge_loss_weight, sectors)
    return gnn, arguments, history


def cluster_events(gnn: nn.Module, events: Sequence[GraphEvent],
                   tables: Sequence[EventTables],
                   clustering: ClusteringSettings) -> list[ClusterEvent]:
    """The Split and Stop modules' training events: the GNN's output, with the TrackML
    weights of the hits for the Stop labels."""
    return [cluster_event(gnn, event, torch.as_tensor(table.hits["weight"].to_numpy()),
                          clustering)
            for event, table in zip(events, tables, strict=True)]


def fit_split(events: Sequence[ClusterEvent], hidden: int, layers: int, epochs: int,
              lr: float, clustering: ClusteringSettings, seed: int,
              device: torch.device) -> Trained:
    torch.manual_seed(seed)
    arguments = {"in_features": int(events[0].features.shape[1]), "hidden": hidden,
                 "layers": layers}
    split = Split(**arguments)
    history = train_split(split, events, epochs, lr, seed, threshold=clustering.threshold,
                          min_size=clustering.min_size, max_depth=clustering.max_depth,
                          device=device)
    return split, arguments, history


def fit_stop(events: Sequence[ClusterEvent], split: Split, hidden: int, layers: int,
             epochs: int, lr: float, clustering: ClusteringSettings, seed: int,
             device: torch.device) -> Trained:
    """Train a Stop module on the labels of the trees `split` grows."""
    torch.manual_seed(seed)
    arguments = {"in_features": int(events[0].features.shape[1]), "hidden": hidden,
                 "layers": layers}
    stop = Stop(**arguments)
    return stop, arguments, continue_stop(stop, split, events, epochs, lr, clustering, seed,
                                          device)


def continue_stop(stop: Stop, split: Split, events: Sequence[ClusterEvent], epochs: int,
                  lr: float, clustering: ClusteringSettings, seed: int,
                  device: torch.device) -> list[dict]:
    """Train `stop` further, in place, on the labels of `split`'s trees."""
    return train_stop(stop, split, events, epochs, lr, seed, clustering.threshold,
                      clustering.min_size, clustering.max_depth, device=device)


def fine_tune(gnn: ClusteringGNN, split: Split, events: Sequence[GraphEvent], epochs: int,
              lr: float, hinge_weight: float, margin: float, clustering: ClusteringSettings,
              seed: int, device: torch.device) -> list[dict]:
    """Train the GNN and Split together on the recursive split loss (Sec. 3.1), in place,
    Split starting from the components of the GNN's classified edges before tuning."""
    events = [restarted(gnn, event, clustering) for event in events]
    return train_end_to_end(gnn, split, events, epochs, lr, seed, hinge_weight, margin,
                            threshold=clustering.threshold, min_size=clustering.min_size,
                            max_depth=clustering.max_depth, device=device)
