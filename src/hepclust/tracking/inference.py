"""Held-out events through the trained clustering GNN and through the alternatives: the
tracks of each, scored, with TrackML submission files; and the summary that becomes
results/tracking/metrics.json."""

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from hepclust.tracking.alternatives import BaselineSettings, baseline_tracks
from hepclust.tracking.evaluation import (
    all_pairs_row,
    combine_binned,
    score_tracks,
    summarise_graphs,
    summarise_method,
    write_submission,
)
from hepclust.tracking.events import EventTables
from hepclust.tracking.graph import edge_metrics
from hepclust.tracking.pipeline import (
    STAGES,
    ClusteringSettings,
    GraphSettings,
    Models,
    reconstruct,
)

METHOD = "split_stop"


def infer_events(tables: Sequence[EventTables], models: Models, graph: GraphSettings,
                 clustering: ClusteringSettings, device: torch.device,
                 submissions: str | Path) -> tuple[dict, dict]:
    """(results, outputs) of the held-out events: per event its score and rates (binned
    too), stage seconds, graph sizes and recursion; the tensors the alternatives reuse.
    Writes each event's submission and truth into `submissions`."""
    results, outputs = {}, {}
    for table in tqdm(tables, desc="inference", unit="event"):
        event = table.tracking_event()
        found = reconstruct(event, models, graph, clustering, device)
        write_submission(submissions, table, found.track_id)
        balance = found.clustering.balance
        results[table.name] = {
            **score_tracks(table, found.track_id, binned=True),
            "seconds": sum(found.seconds.values()),
            "stage_seconds": found.seconds,
            "depth": found.clustering.depth,
            "splits": len(balance),
            "mean_balance": float(balance.mean()) if len(balance) else None,
            "balance": balance.tolist(),
            "degenerate_splits": found.clustering.degenerate,
            "initial_clusters": (1 if found.initial is None
                                 else int(found.initial.unique().numel())),
            "graphs": {name: edge_metrics(edges, event.particle_id, event.positions)
                       for name, edges in (("embedding", found.candidates),
                                           ("filtered", found.filtered),
                                           ("refined", found.refined),
                                           ("classified", found.classified))},
        }
        outputs[table.name] = {"embedding": found.embedding.cpu(),
                               "gnn_output": found.gnn_output.cpu(),
                               "refined": found.refined.cpu(),
                               "initial": (None if found.initial is None
                                           else found.initial.cpu()),
                               "track_id": torch.from_numpy(found.track_id),
                               # Split/Stop's own tracks, and their time from the start
                               "divided": torch.from_numpy(found.clustering.track_id),
                               "divided_seconds": torch.tensor(
                                   sum(found.seconds.values()) - found.seconds["reclustering"])}
    return results, outputs


def compare_events(tables: Sequence[EventTables], outputs: dict, settings: BaselineSettings,
                   untuned: Models | None = None, graph: GraphSettings | None = None,
                   clustering: ClusteringSettings | None = None,
                   device: torch.device | str = "cpu") -> dict:
    """method -> event -> score and rates of every alternative on the held-out events;
    with `untuned`, also the Split/Stop pipeline before its end-to-end fine tuning."""
    results: dict[str, dict] = {}
    for table in tqdm(tables, desc="baselines", unit="event"):
        saved = outputs[table.name]
        x, y, z = (table.hits[c].to_numpy() for c in ("x", "y", "z"))
        found = baseline_tracks(x, y, z, saved["embedding"], saved["gnn_output"],
                                saved["refined"], settings, saved.get("initial"))
        if "divided" in saved:
            found["split_stop_without_reclustering"] = (saved["divided"].numpy(),
                                                        float(saved["divided_seconds"]))
        if untuned is not None:
            before = reconstruct(table.tracking_event(), untuned, graph, clustering, device)
            found["split_stop_before_fine_tuning"] = (before.track_id,
                                                     sum(before.seconds.values()))
        for name, (track_id, seconds) in found.items():
            results.setdefault(name, {})[table.name] = {**score_tracks(table, track_id),
                                                        "seconds": seconds}
    return results


def tracking_summary(inference: dict, baselines: dict, training_graphs: dict,
                     histories: dict) -> dict:
    """results/tracking/metrics.json from the held-out events' results, the baselines',
    the training events' graph rows and the training histories."""
    events = list(inference.values())
    ours = summarise_method(inference)
    methods = {METHOD: ours, **{name: summarise_method(per_event)
                                for name, per_event in baselines.items()}}
    refined = summarise_graphs([e["graphs"]["refined"] for e in events])
    filtered = summarise_graphs([e["graphs"]["filtered"] for e in events])
    embedding = summarise_graphs([e["graphs"]["embedding"] for e in events])
    classified = summarise_graphs([e["graphs"]["classified"] for e in events])
    # Edge efficiency: the share of the candidate graph's true edges the clustering's
    # starting graph keeps.
    efficiency = (classified["true_edges"] / embedding["true_edges"]
                  if embedding["true_edges"] else None)
    all_pairs = all_pairs_row([e["hits"] for e in events],
                              [e["graphs"]["embedding"]["true_pairs"] for e in events])
    balance = np.concatenate([np.asarray(e["balance"], dtype=float) for e in events])
    return {
        "trackml_score": ours["score"],
        "per_event_scores": ours["per_event"],
        "baseline_scores": {name: m["score"] for name, m in methods.items() if name != METHOD},
        "edge_recall": classified["consecutive_recall"],
        "edge_purity": classified["purity"],
        "edge_efficiency": efficiency,
        "edge_recall_all_pairs": classified["recall"],
        "refined_edge_recall": refined["consecutive_recall"],
        "refined_edge_purity": refined["purity"],
        "candidate_edge_recall": embedding["consecutive_recall"],
        "candidate_edge_purity": embedding["purity"],
        "filtered_edge_recall": filtered["consecutive_recall"],
        "filtered_edge_purity": filtered["purity"],
        "filtered_edges_per_event": filtered["edges_per_event"],
        "score_pt_above_1gev": ours["score_pt_above_1gev"],
        "efficiency_pt_above_1gev": ours["efficiency_pt_above_1gev"],
        "seconds_per_event": ours["seconds_per_event"],
        "stage_seconds_per_event": {s: float(np.mean([e["stage_seconds"].get(s, 0.0)
                                                      for e in events])) for s in STAGES},
        "test_events": len(events),
        "hits_per_event": float(np.mean([e["hits"] for e in events])),
        "efficiency": ours["efficiency"],
        "fake_rate": ours["fake_rate"],
        "duplicate_rate": ours["duplicate_rate"],
        "table_3_1": {"all_pairs": all_pairs, "embedding": embedding, "filtered": filtered,
                      "refined": refined, "classified": classified,
                      "training_events": training_graphs},
        "table_3_2": {name: {k: v for k, v in m.items() if k != "per_event"}
                      for name, m in methods.items()},
        "binned": combine_binned([e["binned"] for e in events]),
        "recursion": {
            "mean_depth": float(np.mean([e["depth"] for e in events])),
            "max_depth": max(e["depth"] for e in events),
            "log2_hits": float(np.log2(np.mean([e["hits"] for e in events]))),
            "splits": len(balance),
            "mean_balance": float(balance.mean()) if len(balance) else None,
            "median_balance": float(np.median(balance)) if len(balance) else None,
            "degenerate_splits": int(sum(e["degenerate_splits"] for e in events)),
            "mean_initial_clusters": float(np.mean([e["initial_clusters"] for e in events])),
        },
        "training": {name: {"epochs": len(h), "seconds": float(sum(e["seconds"] for e in h)),
                            "final": h[-1] if h else None}
                     for name, h in histories.items()},
    }

