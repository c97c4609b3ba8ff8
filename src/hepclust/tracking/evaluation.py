"""Scoring the tracks found on held-out events: the TrackML score and the tracking rates
of each event and method, TrackML submission files, and their summary over events."""

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hepclust.io.parquet import atomic_path
from hepclust.tracking.events import EventTables
from hepclust.tracking.score import metrics_by_bin, tracking_metrics

RATES = ("efficiency", "fake_rate", "duplicate_rate", "score_pt_above_1gev",
         "efficiency_pt_above_1gev")
# The binned rates and the counts they divide by, to add up over events.
BINNED_RATES = {"efficiency": "particles", "fake_rate": "tracks",
                "duplicate_rate": "pure_tracks"}


def submission(event: EventTables, track_id: np.ndarray) -> pd.DataFrame:
    """TrackML's submission of one event: event_id, hit_id, track_id (from 1)."""
    track_id = np.asarray(track_id, dtype=np.int64)
    if len(track_id) != len(event.hits):
        raise ValueError(f"{len(track_id)} track ids for the {len(event.hits)} hits of "
                         f"{event.source}")
    return pd.DataFrame({"event_id": np.full(len(track_id), event.event_id, dtype=np.int64),
                         "hit_id": event.hits["hit_id"].to_numpy(),
                         "track_id": track_id + 1})


def truth(event: EventTables) -> pd.DataFrame:
    """What rescoring a submission needs: hit_id, particle_id, weight."""
    return event.hits[["hit_id", "particle_id", "weight"]].reset_index(drop=True)


def write_submission(directory: str | Path, event: EventTables, track_id: np.ndarray) -> None:
    """<event>.csv (the submission) and <event>-truth.csv in `directory`, atomically."""
    directory = Path(directory)
    for name, table in ((f"{event.name}.csv", submission(event, track_id)),
                        (f"{event.name}-truth.csv", truth(event))):
        with atomic_path(directory / name) as tmp:
            table.to_csv(tmp, index=False)


def score_tracks(event: EventTables, track_id: np.ndarray, binned: bool = False) -> dict:
    """The score and tracking rates of one event's tracks (and the rates in pT and eta
    bins if `binned`)."""
    found = submission(event, track_id)
    result = tracking_metrics(event.hits, event.particles, found, source=event.source)
    if binned:
        result["binned"] = metrics_by_bin(event.hits, event.particles, found,
                                          source=event.source)
    return result


def combine_binned(per_event: Sequence[dict]) -> dict:
    """Rates in bins over many events, from `metrics_by_bin` of each: the counts added
    up, each rate recomputed from them (None in an empty bin)."""
    combined = {}
    for axis in ("pt", "eta"):
        first = per_event[0][axis]
        entry = {"edges": first["edges"]}
        for rate, total in BINNED_RATES.items():
            totals = np.zeros(len(first[total]), dtype=np.int64)
            counts = np.zeros(len(first[total]), dtype=np.int64)
            for event in per_event:
                bins = np.asarray(event[axis][total], dtype=np.int64)
                values = np.asarray([0.0 if v is None else v for v in event[axis][rate]])
                totals += bins
                counts += np.rint(values * bins).astype(np.int64)
            entry[total] = totals.tolist()
            entry[rate] = [float(c / t) if t else None
                           for c, t in zip(counts, totals, strict=True)]
        combined[axis] = entry
    return combined


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return float(np.mean(present)) if present else None


def summarise_method(per_event: Mapping[str, dict]) -> dict:
    """Mean score and rates of one method over events (event name -> `score_tracks`)."""
    results = list(per_event.values())
    summary = {"score": _mean([r["score"] for r in results]),
               "score_std": float(np.std([r["score"] for r in results])),
               **{rate: _mean([r[rate] for r in results]) for rate in RATES},
               "per_event": {name: r["score"] for name, r in per_event.items()}}
    if "seconds" in results[0]:
        summary["seconds_per_event"] = _mean([r["seconds"] for r in results])
    return summary


def summarise_graphs(rows: Sequence[dict]) -> dict:
    """A row of Table 3.1 from per-event `edge_metrics`: edges per event, and purity and
    recall over all the events' edges together."""
    edges = sum(r["edges"] for r in rows)
    true_edges = sum(r["true_edges"] for r in rows)
    true_pairs = sum(r["true_pairs"] for r in rows)
    row = {"events": len(rows), "edges_per_event": edges / max(len(rows), 1),
           "edges": edges, "true_edges": true_edges, "true_pairs": true_pairs,
           "purity": true_edges / edges if edges else None,
           "recall": true_edges / true_pairs if true_pairs else None}
    if rows and all("consecutive_pairs" in r for r in rows):
        wanted = sum(r["consecutive_pairs"] for r in rows)
        row["consecutive_recall"] = (sum(r["consecutive_edges"] for r in rows) / wanted
                                     if wanted else None)
    return row


def all_pairs_row(num_hits: Sequence[int], true_pairs: Sequence[int]) -> dict:
    """Table 3.1's "All Pairs" row: every pair of hits of each event is an edge."""
    edges = sum(n * (n - 1) // 2 for n in num_hits)
    true_edges = sum(true_pairs)
    return {"events": len(num_hits), "edges_per_event": edges / max(len(num_hits), 1),
            "edges": edges, "true_edges": true_edges, "true_pairs": true_edges,
            "purity": true_edges / edges if edges else None,
            "recall": 1.0 if true_edges else None}
