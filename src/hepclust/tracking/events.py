"""The tracking events of the clustering GNN's stages: which are trained on and which are
held out, and each one's hits and particles read from the merged Parquet tables with
their contract checked."""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from hepclust.errors import InputError
from hepclust.io.parquet import read_table
from hepclust.io.schema import TRACKML_EVENT_HITS, TRACKML_EVENT_PARTICLES
from hepclust.tracking.hit_features import CELL_COLUMNS, TrackingEvent

MIN_EVENT_HITS = 2  # a graph needs two hits
HIT_COLUMNS = ["event_id", "hit_id", "x", "y", "z", "volume_id", "layer_id", "particle_id",
               "weight"]


def event_name(event_id: int) -> str:
    """TrackML's name of an event: event000001000."""
    return f"event{int(event_id):09d}"


def split_events(event_ids: np.ndarray, train: int, test: int, seed: int,
                 source: str | Path = "hits") -> dict[str, list[int]]:
    """`train` and `test` distinct events drawn at random (with `seed`) from `event_ids`,
    each list sorted; `InputError` naming `source` if there are too few."""
    ids = np.unique(np.asarray(event_ids, dtype=np.int64))
    if train < 1 or test < 1:
        raise InputError(source, f"need at least one training and one test event, "
                                 f"not {train} and {test}")
    if train + test > len(ids):
        raise InputError(source, f"holds {len(ids)} events, fewer than the {train} training "
                                 f"+ {test} test events of tracking_clustering")
    chosen = np.random.default_rng(seed).permutation(ids)
    return {"train": sorted(int(i) for i in chosen[:train]),
            "test": sorted(int(i) for i in chosen[train:train + test])}


def read_event_ids(hits_path: str | Path) -> np.ndarray:
    table = read_table(hits_path, TRACKML_EVENT_HITS, columns=["event_id"])
    return np.unique(table["event_id"].to_numpy())


@dataclass(frozen=True)
class EventTables:
    """One event: its hits (pandas, `HIT_COLUMNS` and any cell columns) and its
    particles (pandas)."""

    event_id: int
    hits: pd.DataFrame
    particles: pd.DataFrame

    @property
    def name(self) -> str:
        return event_name(self.event_id)

    def tracking_event(self) -> TrackingEvent:
        return TrackingEvent.from_hits(self.hits, self.source)

    @property
    def source(self) -> str:
        return f"event {self.event_id}"


def read_events(hits_path: str | Path, particles_path: str | Path,
                event_ids: list[int]) -> list[EventTables]:
    """The hits (with their cell-shape columns `CELL_COLUMNS` where the table has them
    all) and particles of the events `event_ids` (in that order), checked: each event
    present, with at least `MIN_EVENT_HITS` hits and finite positions, weights and cells."""
    hits = read_table(hits_path, TRACKML_EVENT_HITS)
    cells = list(CELL_COLUMNS) if set(CELL_COLUMNS) <= set(hits.column_names) else []
    hits = hits.select(HIT_COLUMNS + cells)
    particles = read_table(particles_path, TRACKML_EVENT_PARTICLES)
    wanted = pa.array(list(event_ids), pa.int64())
    hits = hits.filter(pc.is_in(hits["event_id"], value_set=wanted)).to_pandas()
    particles = particles.filter(pc.is_in(particles["event_id"], value_set=wanted)).to_pandas()
    by_event = dict(tuple(hits.groupby("event_id", sort=False)))
    particles_by_event = dict(tuple(particles.groupby("event_id", sort=False)))
    events = []
    for event_id in event_ids:
        event_hits = by_event.get(event_id)
        if event_hits is None or len(event_hits) < MIN_EVENT_HITS:
            found = 0 if event_hits is None else len(event_hits)
            raise InputError(hits_path, f"event {event_id} has {found} hit(s); the tracking "
                                        f"stages need at least {MIN_EVENT_HITS}")
        for column in ("x", "y", "z", "weight", *cells):
            bad = ~np.isfinite(event_hits[column].to_numpy())
            if bad.any():
                raise InputError(hits_path, f"event {event_id}: column {column} has "
                                            f"{int(bad.sum())} NaN or infinite value(s)")
        event_particles = particles_by_event.get(event_id, particles.iloc[:0])
        events.append(EventTables(int(event_id), event_hits.reset_index(drop=True),
                                  event_particles.reset_index(drop=True)))
    return events
