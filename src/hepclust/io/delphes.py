"""Delphes ROOT output: the reconstructed particles of each event, read with uproot.

One row per event of the tree ``Delphes`` in the `PARTICLES` schema, from the
particle-flow collections ``EFlowTrack``, ``EFlowPhoton`` and ``EFlowNeutralHadron``
where the file has them, else from ``Track`` and ``Tower`` (which count the energy of
charged particles twice, once in each). Tracks keep their ``PID`` (the generated
particle's) and ``Charge``; their energy is from ``Mass`` where the branch exists, else
from ``P`` with the charged-pion mass. Photons get PID 22, neutral hadrons 130 (K0L),
towers 0; all neutrals charge 0 and their stored ``E``. Entries with pT = 0 are dropped:
Delphes writes some EFlowTrack entries with PT = P = 0 and Eta = 999.9.
"""

import lzma
import zlib
from collections.abc import Iterator
from pathlib import Path

import awkward as ak
import numpy as np
import pyarrow as pa
import uproot

from hepclust.errors import InputError
from hepclust.io.parquet import conform
from hepclust.io.schema import PARTICLES

TREE = "Delphes"
PION_MASS = 0.13957039  # GeV
PHOTON_PID, NEUTRAL_HADRON_PID, TOWER_PID = 22, 130, 0

# (collection, PID of its neutrals or None for tracks), by preference.
PARTICLE_FLOW = (("EFlowTrack", None), ("EFlowPhoton", PHOTON_PID),
                 ("EFlowNeutralHadron", NEUTRAL_HADRON_PID))
TRACKS_AND_TOWERS = (("Track", None), ("Tower", TOWER_PID))
_TRACK_FIELDS = ("PT", "Eta", "Phi", "P", "PID", "Charge")
_NEUTRAL_FIELDS = ("ET", "Eta", "Phi", "E")
# What uproot raises on a damaged file, a corrupted compressed basket among them.
_READ_ERRORS = (OSError, ValueError, uproot.deserialization.DeserializationError, zlib.error,
                lzma.LZMAError)


def read_delphes(path: str | Path, max_events: int | None = None) -> pa.Table:
    """The particles of every event (or the first `max_events`) in the `PARTICLES` schema."""
    return pa.concat_tables(iter_delphes(path, max_events))


def iter_delphes(path: str | Path, max_events: int | None = None,
                 step_size: str = "100 MB") -> Iterator[pa.Table]:
    """`PARTICLES` tables, one per step of about `step_size` read from the file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        with uproot.open(path) as handle:
            tree = handle.get(TREE)
            if not isinstance(tree, uproot.TTree):  # also when it is an RNTuple
                raise InputError(path, f"has no tree {TREE!r}")
            if tree.num_entries == 0:
                raise InputError(path, "holds no events")
            collections = _collections(tree, path)
            branches = [f"{name}.{field}" for name, _, fields in collections for field in fields]
            for arrays in tree.iterate(branches, entry_stop=max_events, step_size=step_size):
                parts = [_collection(arrays, *collection, path) for collection in collections]
                yield _particles_table(ak.concatenate(parts, axis=1), path)
    except InputError:
        raise
    except _READ_ERRORS as err:
        reason = " ".join(str(err).split())  # uproot's messages span lines
        raise InputError(path, f"not a readable Delphes ROOT file ({reason})") from err


def _collections(tree: uproot.TTree, path: Path) -> list[tuple[str, int | None, list[str]]]:
    """(name, PID of its neutrals or None for tracks, branches to read) per collection."""
    for choice in (PARTICLE_FLOW, TRACKS_AND_TOWERS):
        required = {name: _TRACK_FIELDS if pid is None else _NEUTRAL_FIELDS
                    for name, pid in choice}
        if all(f"{name}.{field}" in tree for name, fields in required.items()
               for field in fields):
            return [(name, pid, [*required[name], *(["Mass"] if pid is None and
                                                    f"{name}.Mass" in tree else [])])
                    for name, pid in choice]
    raise InputError(path, "has neither the particle-flow branches (EFlowTrack, EFlowPhoton, "
                           "EFlowNeutralHadron) nor Track and Tower, with "
                           f"{', '.join(_TRACK_FIELDS)} for tracks and "
                           f"{', '.join(_NEUTRAL_FIELDS)} for neutrals")


def _collection(arrays: ak.Array, name: str, pid: int | None, fields: list[str],
                path: Path) -> ak.Array:
    """One collection as records (pt, eta, phi, e, pid, charge) per event."""
    values = {field: arrays[f"{name}.{field}"] for field in fields}
    for field, column in values.items():
        if column.ndim != 2:
            raise InputError(path, f"branch {name}.{field} is not a list per event")
        if not ak.all(ak.num(column) == ak.num(values[fields[0]])):
            raise InputError(path, f"branch {name}.{field} differs in length from "
                                   f"{name}.{fields[0]}")
        if not ak.all(np.isfinite(column)):
            raise InputError(path, f"branch {name}.{field} holds NaN or infinite values")
    if pid is not None:
        return ak.zip({"pt": values["ET"], "eta": values["Eta"], "phi": values["Phi"],
                       "e": values["E"], "pid": ak.full_like(values["ET"], pid, dtype=np.int32),
                       "charge": ak.full_like(values["ET"], 0, dtype=np.int8)})
    mass = values.get("Mass", PION_MASS)
    return ak.zip({"pt": values["PT"], "eta": values["Eta"], "phi": values["Phi"],
                   "e": np.sqrt(values["P"] ** 2 + mass**2), "pid": values["PID"],
                   "charge": ak.values_astype(values["Charge"], np.int8)})


def _particles_table(particles: ak.Array, path: Path) -> pa.Table:
    """Drop pT = 0 entries, sort each event by decreasing pT, one list column per field."""
    particles = particles[particles.pt > 0]
    particles = particles[ak.argsort(particles.pt, axis=1, ascending=False, stable=True)]
    columns = {f"part_{field}": ak.to_arrow(particles[field], extensionarray=False)
               for field in ("pt", "eta", "phi", "e", "pid", "charge")}
    return conform(pa.table(columns), PARTICLES, path)
