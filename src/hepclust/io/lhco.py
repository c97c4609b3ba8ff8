"""The LHC Olympics 2020 R&D set, ``events_anomalydetection.h5`` (Zenodo 2629073).

A pandas DataFrame stored under the key ``df``: one row per event, 2101 columns, the
(pT, eta, phi) of up to 700 particles interleaved, zero-padded, then the truth label
(1 signal, 0 background). The real file, 1.1 M events of float64, is pandas' "fixed"
layout (``/df/block0_values``); the "table" layout (``/df/table``) is read too. Both are
read with h5py a chunk of rows at a time, never whole. Events become the `DIJETS` table
through `hepclust.features.dijets.dijet_table`, which drops events with fewer than two jets.
"""

import io
import pickle
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from hepclust.errors import InputError
from hepclust.features.dijets import dijet_table, drop_reason
from hepclust.io.hdf5 import check_finite, check_numeric, open_hdf5, read_errors

MAX_PARTICLES = 700
# Bounds no particle of a 13 TeV collision exceeds (damaged files hold any number).
MAX_PT, MAX_ABS_ETA = 14_000.0, 20.0
N_COLUMNS = 3 * MAX_PARTICLES + 1

RowReader = Callable[[int, int], np.ndarray]


def read_lhco(path: str | Path, max_events: int | None = None, radius: float = 1.0,
              dropped: Counter | None = None) -> pa.Table:
    """The dijet table of the file's first `max_events` events (all by default)."""
    return pa.concat_tables(iter_lhco(path, max_events, radius, dropped=dropped))


def iter_lhco(path: str | Path, max_events: int | None = None, radius: float = 1.0,
              chunk_size: int = 10_000, dropped: Counter | None = None) -> Iterator[pa.Table]:
    """`DIJETS` tables, one per chunk of `chunk_size` events read. The events left out
    (fewer than two jets) are counted in `dropped` by reason."""
    path = Path(path)
    with open_hdf5(path) as handle:
        n_rows, read_rows = _frame(handle, path)
        n_events = n_rows if max_events is None else min(max_events, n_rows)
        if n_events == 0:
            raise InputError(path, "holds no events")
        with tqdm(total=n_events, unit="event", desc=path.name, disable=None) as bar:
            for start in range(0, n_events, chunk_size):
                stop = min(start + chunk_size, n_events)
                with read_errors(path):
                    rows = read_rows(start, stop)
                particles, labels = _events(rows, path)
                table = dijet_table(particles, labels, radius=radius,
                                    max_particles=MAX_PARTICLES)
                if dropped is not None and table.num_rows < len(labels):
                    dropped[drop_reason(radius)] += len(labels) - table.num_rows
                yield table
                bar.update(stop - start)


def _events(rows: np.ndarray, path: Path) -> tuple[ak.Array, np.ndarray]:
    """Particles (pt, eta, phi) per event, padding removed, and the labels."""
    check_finite(rows, "df", path)
    labels = rows[:, -1]
    if not np.isin(labels, (0, 1)).all():
        raise InputError(path, "the label column (the last) holds values other than 0 and 1")
    triples = rows[:, :-1].reshape(len(rows), MAX_PARTICLES, 3)
    real = triples[..., 0] > 0
    flat = {name: triples[..., i][real] for i, name in enumerate(("pt", "eta", "phi"))}
    if (flat["pt"] > MAX_PT).any() or (np.abs(flat["eta"]) > MAX_ABS_ETA).any() \
            or (np.abs(flat["phi"]) > 2 * np.pi).any():
        raise InputError(path, f"a particle has pT above {MAX_PT:g} GeV, |eta| above "
                               f"{MAX_ABS_ETA:g} or |phi| above 2 pi: not a particle of a "
                               "collision")
    return ak.unflatten(ak.zip(flat), real.sum(axis=1)), labels.astype(np.int8)


def _frame(handle: h5py.File, path: Path) -> tuple[int, RowReader]:
    """The number of rows of the DataFrame ``df`` and a reader of rows [start, stop) as an
    array whose columns are in the frame's order, whichever pandas layout holds it."""
    group = handle.get("df")
    if not isinstance(group, h5py.Group):
        raise InputError(path, "has no pandas DataFrame under the key 'df'")
    try:
        if "table" in group:
            table = group["table"]
            columns = _unpickled(group.attrs.get("non_index_axes"), path)[0][1]
            fields = sorted(n for n in table.dtype.names or () if n.startswith("values_block_"))
            blocks = [(_unpickled(table.attrs.get(f"{name}_kind"), path), table, name)
                      for name in fields]
            n_rows = table.shape[0]
        else:
            columns = list(group["axis0"][()])
            blocks = [(list(group[f"block{i}_items"][()]), group[f"block{i}_values"], None)
                      for i in range(int(group.attrs.get("nblocks", 1)))]
            n_rows = _length(group["axis1"], path)
    except (KeyError, IndexError, TypeError) as err:
        raise InputError(path, f"'df' is neither a pandas fixed nor table layout ({err})") from err
    if n_rows == 0:
        raise InputError(path, "holds no events")
    if len(columns) != N_COLUMNS:
        raise InputError(path, f"'df' has {len(columns)} columns, expected {N_COLUMNS} "
                               f"({MAX_PARTICLES} particles x (pT, eta, phi), then the label)")
    placed = _placed(blocks, columns, n_rows, path)

    def read_rows(start: int, stop: int) -> np.ndarray:
        rows = np.empty((stop - start, N_COLUMNS))
        for targets, data, field in placed:
            values = data[start:stop] if field is None else data.fields(field)[start:stop]
            rows[:, targets] = values.reshape(stop - start, -1)
        return rows

    return n_rows, read_rows


def _placed(blocks: list, columns: list, n_rows: int, path: Path) -> list:
    """Each block with the frame positions of its columns, after checking that the blocks
    cover every column once and agree with their item lists in shape."""
    position = {column: i for i, column in enumerate(columns)}
    covered = sorted(position.get(item, -1) for items, _, _ in blocks for item in items)
    if covered != list(range(len(columns))):
        raise InputError(path, "'df' blocks do not match its column list")
    for items, data, field in blocks:
        check_numeric(data.dtype[field].base if field else data.dtype,
                      f"'df' block {field or data.name}", path)
        shape = data.dtype[field].shape if field else data.shape[1:]
        if data.shape[0] != n_rows or shape != (len(items),):
            raise InputError(path, f"'df' block {field or data.name} has shape {data.shape}"
                                   f" for {len(items)} columns and {n_rows} rows")
    return [([position[item] for item in items], data, field) for items, data, field in blocks]


def _length(index: h5py.Dataset, path: Path) -> int:
    """Rows of a fixed-layout index; pandas stores an empty one as a dummy of length 1
    with the true shape in the attribute ``shape``."""
    if "shape" in index.attrs:
        return _unpickled(index.attrs["shape"], path)[0]
    return index.shape[0]


class _PlainUnpickler(pickle.Unpickler):
    """Pandas stores the table layout's column labels pickled; this loads plain lists,
    tuples, numbers and strings only, and refuses anything that names a class."""

    def find_class(self, module: str, name: str):
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _unpickled(data, path: Path):
    if data is None:
        raise InputError(path, "'df' table lacks pandas' column metadata")
    try:
        return _PlainUnpickler(io.BytesIO(bytes(data))).load()
    except (pickle.UnpicklingError, EOFError, ValueError, OverflowError, IndexError, KeyError,
            TypeError, AttributeError, MemoryError) as err:  # what damaged pickles raise
        raise InputError(path, f"'df' table has unreadable column metadata ({err})") from err
