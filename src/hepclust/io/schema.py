"""The Parquet tables every stage reads, and the check of that contract.

One row per jet (``JETS``), per dijet event (``DIJETS``), per event of particles
(``PARTICLES``, what the Delphes reader writes), per hit (``TRACKML_HITS``) and per
truth particle (``TRACKML_PARTICLES``). Particle lists are Parquet list columns
(``part_*``), sorted by decreasing pT and truncated to the stage's maximum.
Units: GeV, radians, millimetres. Full descriptions in ``docs/data.md``.
"""

from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa

from hepclust.errors import InputError

# Jet truth labels; hls4ml's five classes, ours generate the first three.
JET_LABELS: dict[str, int] = {"W": 0, "Z": 1, "top": 2, "q": 3, "g": 4}

f32 = pa.float32()


def _lists(**types: pa.DataType) -> list[pa.Field]:
    return [pa.field(f"part_{name}", pa.list_(t)) for name, t in types.items()]


PARTICLES = pa.schema(
    _lists(pt=f32, eta=f32, phi=f32, e=f32, pid=pa.int32(), charge=pa.int8())
)

JETS = pa.schema(
    [
        pa.field("jet_pt", f32),
        pa.field("jet_eta", f32),
        pa.field("jet_phi", f32),
        pa.field("jet_mass", f32),
        pa.field("jet_e", f32),
        pa.field("n_constituents", pa.int16()),
        pa.field("contained", pa.bool_()),
        pa.field("label", pa.int8()),
        *PARTICLES,
    ]
)

_DIJET_JET_FIELDS = [
    pa.field(f"{jet}_{var}", f32)
    for jet in ("jet1", "jet2")
    for var in ("pt", "eta", "phi", "mass", "tau21")
]

# LHC Olympics events carry massless (pT, eta, phi) particles only.
DIJETS = pa.schema(
    [
        *_DIJET_JET_FIELDS,
        pa.field("mjj", f32),
        pa.field("label", pa.int8()),
        *_lists(pt=f32, eta=f32, phi=f32),
    ]
)

TRACKML_HITS = pa.schema(
    [
        pa.field("hit_id", pa.int64()),
        pa.field("x", f32),
        pa.field("y", f32),
        pa.field("z", f32),
        pa.field("volume_id", pa.int8()),
        pa.field("layer_id", pa.int8()),
        pa.field("module_id", pa.int16()),
        pa.field("particle_id", pa.int64()),
        pa.field("tx", f32),
        pa.field("ty", f32),
        pa.field("tz", f32),
        pa.field("tpx", f32),
        pa.field("tpy", f32),
        pa.field("tpz", f32),
        pa.field("weight", f32),
    ]
)

TRACKML_PARTICLES = pa.schema(
    [
        pa.field("particle_id", pa.int64()),
        pa.field("particle_type", pa.int32()),
        pa.field("vx", f32),
        pa.field("vy", f32),
        pa.field("vz", f32),
        pa.field("px", f32),
        pa.field("py", f32),
        pa.field("pz", f32),
        pa.field("q", pa.int8()),
        pa.field("nhits", pa.int16()),
    ]
)

# Many events in one table: the per-event tables with the event's number.
EVENT_ID = pa.field("event_id", pa.int64())
TRACKML_EVENT_HITS = TRACKML_HITS.append(EVENT_ID)
TRACKML_EVENT_PARTICLES = TRACKML_PARTICLES.append(EVENT_ID)

SCHEMAS: Mapping[str, pa.Schema] = {
    "particles": PARTICLES,
    "jets": JETS,
    "dijets": DIJETS,
    "trackml_hits": TRACKML_HITS,
    "trackml_particles": TRACKML_PARTICLES,
    "trackml_event_hits": TRACKML_EVENT_HITS,
    "trackml_event_particles": TRACKML_EVENT_PARTICLES,
}


def check_contract(schema: pa.Schema, expected: pa.Schema, source: str | Path) -> None:
    """Raise `InputError` naming `source` unless `schema` has every column of `expected`
    with the same type. Extra columns are allowed."""
    missing = [f.name for f in expected if f.name not in schema.names]
    if missing:
        raise InputError(source, f"missing column(s) {', '.join(missing)}")
    wrong = [
        f"{f.name} is {schema.field(f.name).type}, expected {f.type}"
        for f in expected
        if not schema.field(f.name).type.equals(f.type)
    ]
    if wrong:
        raise InputError(source, "wrong column type(s): " + "; ".join(wrong))
