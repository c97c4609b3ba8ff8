"""TrackML events (Kaggle accuracy phase and Codalab throughput phase): CSV files.

One event is ``event<9 digits>-hits.csv``, ``-truth.csv``, ``-particles.csv`` and, where
the event has them, ``-cells.csv``, plain or gzipped. Hits are joined with their truth on
``hit_id`` (`TRACKML_HITS`) and with the cluster-shape features of their cells
(`trackml_cells.CELL_FEATURES`, zeros without a cells file); particles go to
`TRACKML_PARTICLES`. The Kaggle files lack
``particle_type``, which is then 0. Values are kept exactly: floats are parsed straight
to float32 and written back with the shortest text that reads back to the same float32,
so CSV -> Parquet -> CSV is lossless.
"""

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as csv

from hepclust.errors import InputError
from hepclust.io.parquet import atomic_path, conform
from hepclust.io.schema import TRACKML_HITS, TRACKML_PARTICLES
from hepclust.io.trackml_cells import TRACKML_CELLS, cell_features, no_cell_features

HIT_COLUMNS = ("hit_id", "x", "y", "z", "volume_id", "layer_id", "module_id")
TRUTH_COLUMNS = ("hit_id", "particle_id", "tx", "ty", "tz", "tpx", "tpy", "tpz", "weight")
PARTICLE_COLUMNS = tuple(TRACKML_PARTICLES.names)
CELL_COLUMNS = tuple(TRACKML_CELLS.names)
EVENT_FILE = re.compile(r"(?P<prefix>event\d+)(-(hits|truth|particles|cells)\.csv(\.gz)?)?")


def event_prefix(path: str | Path) -> Path:
    """``dir/event000000001`` from that prefix or from the path of any of its files."""
    path = Path(path)
    match = EVENT_FILE.fullmatch(path.name)
    return path.with_name(match["prefix"]) if match else path


def has_truth(path: str | Path) -> bool:
    """Whether the event that `path` names has a truth file (test events have none)."""
    prefix = event_prefix(path)
    return any(prefix.with_name(f"{prefix.name}-truth{s}").is_file()
               for s in (".csv", ".csv.gz"))


def read_trackml_hits(path: str | Path) -> pa.Table:
    """The hits of an event without truth (a test event), as `TRACKML_HITS` with no
    particle (0) and no weight, and their cells' features."""
    prefix = event_prefix(path)
    hits = _read_csv(_event_file(prefix, "hits"), HIT_COLUMNS, TRACKML_HITS)
    n = hits.num_rows
    for name in TRUTH_COLUMNS[1:]:
        hits = hits.append_column(name, pa.array(np.zeros(n), TRACKML_HITS.field(name).type))
    return _with_cell_features(hits, prefix)


def _with_cell_features(hits: pa.Table, prefix: Path) -> pa.Table:
    cells = read_trackml_cells(prefix)
    if cells is None:
        features = no_cell_features(hits.num_rows)
    else:
        features = cell_features(hits["hit_id"].to_numpy(), hits["volume_id"].to_numpy(),
                                 cells, _event_file(prefix, "cells"))
    for name in features.column_names:
        hits = hits.append_column(name, features[name])
    return hits


def read_trackml_event(path: str | Path) -> tuple[pa.Table, pa.Table]:
    """(hits joined with truth and their cells' features, particles) of the event that
    `path` names."""
    prefix = event_prefix(path)
    hits_path, truth_path, particles_path = (_event_file(prefix, part)
                                             for part in ("hits", "truth", "particles"))
    hits = _read_csv(hits_path, HIT_COLUMNS, TRACKML_HITS)
    truth = _read_csv(truth_path, TRUTH_COLUMNS, TRACKML_HITS)
    particles = _read_csv(particles_path, PARTICLE_COLUMNS, TRACKML_PARTICLES,
                          optional={"particle_type": 0})
    _check_unique(particles["particle_id"], "particle_id", particles_path)
    hits = _join_truth(hits, truth, hits_path, truth_path)
    _check_truth(hits, particles, truth_path, particles_path)
    return _with_cell_features(hits, prefix), particles


def read_trackml_cells(path: str | Path) -> pa.Table | None:
    """The cells of the event that `path` names (`TRACKML_CELLS`), None without a file."""
    prefix = event_prefix(path)
    try:
        cells_path = _event_file(prefix, "cells")
    except InputError:
        return None
    return _read_csv(cells_path, CELL_COLUMNS, TRACKML_CELLS)


def _event_file(prefix: Path, part: str) -> Path:
    for suffix in (".csv", ".csv.gz"):
        path = prefix.with_name(f"{prefix.name}-{part}{suffix}")
        if path.is_file():
            return path
    raise InputError(prefix.with_name(f"{prefix.name}-{part}.csv"), "no such file (nor .csv.gz)")


def _read_csv(path: Path, columns: tuple[str, ...], schema: pa.Schema,
              optional: dict[str, int] | None = None) -> pa.Table:
    types = {name: schema.field(name).type for name in columns}
    try:
        table = csv.read_csv(path, convert_options=csv.ConvertOptions(column_types=types))
        present = table.column_names  # a header that is not UTF-8 fails here
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as err:
        raise InputError(path, f"not a readable TrackML CSV file ({err})") from err
    for name, value in (optional or {}).items():
        if name not in present:
            table = table.append_column(name, pa.array(np.full(table.num_rows, value),
                                                        types[name]))
    table = conform(table, pa.schema([schema.field(n) for n in columns]), path)
    if table.num_rows == 0:
        raise InputError(path, "holds no rows")
    return table.select(list(columns))


def _check_unique(ids: pa.ChunkedArray, name: str, path: Path) -> None:
    values = np.sort(ids.to_numpy())
    repeated = values[1:][values[1:] == values[:-1]]
    if repeated.size:
        raise InputError(path, f"{name} {repeated[0]} appears more than once")


def _join_truth(hits: pa.Table, truth: pa.Table, hits_path: Path, truth_path: Path) -> pa.Table:
    """`hits` in their order, each with the truth columns of its hit_id."""
    _check_unique(hits["hit_id"], "hit_id", hits_path)
    _check_unique(truth["hit_id"], "hit_id", truth_path)
    hit_ids, truth_ids = hits["hit_id"].to_numpy(), truth["hit_id"].to_numpy()
    order = np.argsort(truth_ids, kind="stable")
    slot = np.minimum(np.searchsorted(truth_ids[order], hit_ids), len(order) - 1)
    found = truth_ids[order][slot] == hit_ids
    if not found.all():
        raise InputError(truth_path, f"has no row for {int((~found).sum())} hit(s) of "
                                     f"{hits_path.name}, e.g. hit_id {hit_ids[~found][0]}")
    if len(truth_ids) != len(hit_ids):
        raise InputError(truth_path, f"has {len(truth_ids) - len(hit_ids)} row(s) for hits "
                                     f"absent from {hits_path.name}")
    matched = truth.take(order[slot])
    for name in TRUTH_COLUMNS[1:]:
        hits = hits.append_column(name, matched[name])
    return hits


def _check_truth(hits: pa.Table, particles: pa.Table, truth_path: Path,
                 particles_path: Path) -> None:
    """No negative weight; every hit of a particle (id != 0, noise) has it in the particles."""
    hit_ids = hits["hit_id"].to_numpy()
    negative = hits["weight"].to_numpy() < 0
    if negative.any():
        raise InputError(truth_path, f"weight is negative for {int(negative.sum())} hit(s), "
                                     f"e.g. hit_id {hit_ids[negative][0]}")
    owner = hits["particle_id"].to_numpy()
    missing = (owner != 0) & ~np.isin(owner, particles["particle_id"].to_numpy())
    if missing.any():
        raise InputError(truth_path, f"{int(missing.sum())} hit(s) belong to particle(s) "
                                     f"absent from {particles_path.name}, e.g. particle_id "
                                     f"{owner[missing][0]} (hit_id {hit_ids[missing][0]})")


def write_trackml_csv(hits: pa.Table, particles: pa.Table, directory: str | Path,
                      event_id: int, cells: pa.Table | None = None) -> Path:
    """Write the CSV files of one event in TrackML's column order (the cells file only
    with `cells`); returns the prefix.

    Each file is written atomically; floats as the shortest text giving the same float32.
    """
    prefix = Path(directory) / f"event{event_id:09d}"
    parts = [("hits", conform(hits, TRACKML_HITS, "hits table"), HIT_COLUMNS),
             ("truth", conform(hits, TRACKML_HITS, "hits table"), TRUTH_COLUMNS),
             ("particles", conform(particles, TRACKML_PARTICLES, "particles table"),
              PARTICLE_COLUMNS)]
    if cells is not None:
        parts.append(("cells", conform(cells, TRACKML_CELLS, "cells table"), CELL_COLUMNS))
    for part, table, columns in parts:
        with atomic_path(f"{prefix}-{part}.csv") as tmp:
            write_plain_csv(table.select(list(columns)), tmp)
    return prefix


def write_plain_csv(table: pa.Table, path: str | Path) -> None:
    """Write `table` as CSV with nothing quoted, the header included, as TrackML and ACTS
    read it (Arrow's own writer quotes the column names)."""
    with Path(path).open("wb") as out:
        out.write((",".join(table.column_names) + "\n").encode())
        csv.write_csv(table, out, csv.WriteOptions(include_header=False, quoting_style="none"))


def find_events(path: str | Path) -> list[Path]:
    """Event prefixes named by `path`: one event (a prefix or any of its files), or every
    event whose hits file lies in the directory `path`, in event order."""
    path = Path(path)
    if not path.is_dir():
        return [event_prefix(path)]
    prefixes = {event_prefix(p) for p in path.glob("event*-hits.csv*")
                if EVENT_FILE.fullmatch(p.name)}
    if not prefixes:
        raise InputError(path, "a directory with no TrackML event (event<digits>-hits.csv)")
    return sorted(prefixes, key=event_number)


def event_number(prefix: str | Path) -> int:
    """The number in an ``event<digits>`` prefix."""
    match = EVENT_FILE.fullmatch(event_prefix(prefix).name)
    if not match:
        raise InputError(prefix, "not a TrackML event name (event<digits>[-hits.csv])")
    return int(match["prefix"][len("event"):])


def read_trackml_events(prefixes: list[Path]) -> tuple[pa.Table, pa.Table]:
    """Many events as two tables, hits and particles, each with an ``event_id`` column."""
    numbers = [event_number(p) for p in prefixes]
    if len(set(numbers)) != len(numbers):
        raise InputError(prefixes[0].parent, "the same event number appears twice among "
                                             "the events given")
    hits, particles = [], []
    for number, prefix in zip(numbers, prefixes, strict=True):
        event_hits, event_particles = read_trackml_event(prefix)
        hits.append(_with_event_id(event_hits, number))
        particles.append(_with_event_id(event_particles, number))
    return pa.concat_tables(hits), pa.concat_tables(particles)


def _with_event_id(table: pa.Table, number: int) -> pa.Table:
    return table.append_column("event_id", pa.array(np.full(table.num_rows, number), pa.int64()))
