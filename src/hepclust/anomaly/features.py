"""ABCNet's inputs for anomaly detection (UCluster, Sec. VI and Table III): the particles of
the two heaviest jets of a dijet event, their jet-mass segmentation labels, and the event's
global features.

A `DIJETS` table becomes dense arrays, one row per event, in the form of the jets task
(`hepclust.ucluster.jets`):

- ``features`` (event, particle, feature), float32: the `FEATURES` of Table III. Angles are
  relative to the axis of the particle's own jet, delta-phi wrapped into (-pi, pi]. The
  particles are massless, so E = pT cosh(eta); the jet energy comes from its pT, eta, mass.
- ``mask`` (event, particle), True for real particles; padding is 0.
- ``mass_class`` (event, particle), int64: the segmentation label of Fig. 5, 1 to `bins` for
  the mass interval of the particle's jet (`jet_mass_class`), 0 for padding; so a network
  has ``bins + 1`` classes (`NUM_CLASSES` with the paper's 20 intervals).
- ``jet`` (event, particle), int8: 1 or 2, the jet a particle belongs to; 0 for padding.
- ``global_features`` (event, 4), float32: `GLOBAL_FEATURES`, the last two rows of Table III.
- ``mjj`` (event,), float32 and ``label`` (event,), int64 (1 signal, 0 background).

Jet membership: a particle belongs to the jet whose axis is nearer in (eta, phi), if that
distance is below `radius` (jet1 on a tie); particles of neither jet are dropped. The
lists are pT-ordered (the `DIJETS` contract), so each jet keeps its leading particles.

Shared budget of `max_particles` slots: each jet is owed half of them (jet1, the heavier,
the odd one), and slots one jet leaves unused go to the other. So a jet is cut only when the
two together overflow, and then never below its half: a 200-particle jet beside a 10-particle
jet keeps max_particles - 10. Jet1's particles fill the first slots, jet2's follow.
"""

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hepclust.errors import InputError
from hepclust.features.kinematics import wrap_phi
from hepclust.io.schema import DIJETS, check_contract
from hepclust.ucluster.features import mass_bin_labels

FEATURES = ("delta_eta", "delta_phi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "delta_r")
# The (delta_eta, delta_phi) columns: ABCNet's first kNN works in this plane.
ANGLES = (0, 1)
GLOBAL_FEATURES = ("log_mass_j1", "log_mass_j2", "tau21_j1", "tau21_j2")
MASS_BINS = 20
NUM_CLASSES = MASS_BINS + 1  # the mass intervals and the padding class 0
# Jet masses below this (GeV) enter log m as this, so a one-particle jet (m = 0) stays finite.
MIN_LOG_MASS = 1.0
# Events per pass: bounds the memory of the flat particle arrays.
CHUNK_EVENTS = 20_000

_JET_VARIABLES = ("pt", "eta", "phi", "mass", "tau21")
_PARTICLE_VARIABLES = ("pt", "eta", "phi")


def jet_mass_class(jet_mass: np.ndarray, low: float = 10.0, high: float = 1000.0,
                   bins: int = MASS_BINS) -> np.ndarray:
    """The segmentation class of a jet's particles: 1 to `bins` for which of `bins` equal
    mass intervals from `low` to `high` GeV holds the jet, masses out of range clipped into
    the first or last interval. Class 0 is left for padding."""
    return mass_bin_labels(jet_mass, low, high, bins) + 1


def relative_coordinates(eta: np.ndarray, phi: np.ndarray, axis_eta: np.ndarray,
                         axis_phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(delta-eta, delta-phi, delta-R) of particles from a jet axis, delta-phi in (-pi, pi]."""
    delta_eta = eta - axis_eta
    delta_phi = wrap_phi(phi - axis_phi)
    return delta_eta, delta_phi, np.hypot(delta_eta, delta_phi)


def shared_budget(count1: np.ndarray, count2: np.ndarray,
                  max_particles: int) -> tuple[np.ndarray, np.ndarray]:
    """How many particles each jet keeps out of `max_particles` slots: half each (jet1 the
    odd slot), the slots one jet does not fill going to the other."""
    count1, count2 = np.asarray(count1, np.int64), np.asarray(count2, np.int64)
    half = max_particles - max_particles // 2
    keep1 = np.minimum(count1, np.maximum(half, max_particles - count2))
    return keep1, np.minimum(count2, max_particles - keep1)


def dijet_inputs(table: pa.Table, max_particles: int = 100, radius: float = 1.0,
                 low: float = 10.0, high: float = 1000.0, bins: int = MASS_BINS,
                 source: str | Path = "dijets table") -> dict[str, np.ndarray]:
    """The arrays of the module docstring for every event of a `DIJETS` table.

    Raises `InputError` naming `source` and the column for missing columns, NaN or empty
    values, part_* lists of unequal length, and non-positive particle or jet pT.
    """
    check_contract(table.schema, DIJETS, source)
    if max_particles < 2:
        raise ValueError(f"max_particles must be at least 2 (one slot per jet), "
                         f"got {max_particles}")
    if radius <= 0:
        raise ValueError(f"radius must be positive, got {radius}")
    jets = {f"{jet}_{var}": _finite_column(table, f"{jet}_{var}", source)
            for jet in ("jet1", "jet2") for var in _JET_VARIABLES}
    if (jets["jet1_pt"] <= 0).any() or (jets["jet2_pt"] <= 0).any():
        raise InputError(source, "a jet has a non-positive pT")
    mjj = _finite_column(table, "mjj", source)
    if table["label"].null_count:
        raise InputError(source, "column label has empty values")

    n = table.num_rows
    arrays = {
        "features": np.zeros((n, max_particles, len(FEATURES)), np.float32),
        "mask": np.zeros((n, max_particles), bool),
        "mass_class": np.zeros((n, max_particles), np.int64),
        "jet": np.zeros((n, max_particles), np.int8),
    }
    classes = np.stack([jet_mass_class(jets[f"{jet}_mass"], low, high, bins)
                        for jet in ("jet1", "jet2")], axis=1)
    for start in range(0, n, CHUNK_EVENTS):
        stop = min(start + CHUNK_EVENTS, n)
        rows = slice(start, stop)
        _fill_particles(table.slice(start, stop - start),
                        {name: values[rows] for name, values in jets.items()}, classes[rows],
                        {name: values[rows] for name, values in arrays.items()},
                        max_particles, radius, source)

    arrays["global_features"] = np.stack(
        [np.log(np.maximum(jets["jet1_mass"], MIN_LOG_MASS)),
         np.log(np.maximum(jets["jet2_mass"], MIN_LOG_MASS)),
         jets["jet1_tau21"], jets["jet2_tau21"]], axis=1).astype(np.float32)
    arrays["mjj"] = mjj.astype(np.float32)
    arrays["label"] = table["label"].to_numpy().astype(np.int64)
    return arrays


def _finite_column(table: pa.Table, name: str, source: str | Path) -> np.ndarray:
    column = table[name]
    values = column.to_numpy().astype(np.float64) if column.null_count == 0 else None
    if values is None or not np.isfinite(values).all():
        raise InputError(source, f"column {name} has NaN, infinite or empty values")
    return values


def _flat_particles(table: pa.Table, source: str | Path) -> tuple[np.ndarray, dict]:
    """(particles per event, {variable: flat float64 values}) of the part_* lists."""
    lengths = [pc.fill_null(pc.list_value_length(table[f"part_{var}"]), 0).to_numpy()
               for var in _PARTICLE_VARIABLES]
    if any((length != lengths[0]).any() for length in lengths[1:]):
        raise InputError(source, "the part_* lists of an event differ in length")
    flat = {}
    for var in _PARTICLE_VARIABLES:
        values = pc.list_flatten(table[f"part_{var}"])
        values = values.to_numpy().astype(np.float64) if values.null_count == 0 else None
        if values is None or not np.isfinite(values).all():
            raise InputError(source, f"column part_{var} has NaN, infinite or empty values")
        flat[var] = values
    if (flat["pt"] <= 0).any():
        raise InputError(source, "column part_pt has a non-positive particle pT")
    return lengths[0].astype(np.int64), flat


def _rank_within_event(selected: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """For flat particles grouped by event: the position of each selected particle among
    the selected particles of its event (0 for the first); meaningless where not selected."""
    running = np.cumsum(selected)
    before = np.concatenate([[0], running])[np.cumsum(counts) - counts]
    return running - 1 - np.repeat(before, counts)


def _fill_particles(table: pa.Table, jets: dict[str, np.ndarray], classes: np.ndarray,
                    out: dict[str, np.ndarray], max_particles: int, radius: float,
                    source: str | Path) -> None:
    """Write the particle arrays of `table`'s events into the views `out`."""
    counts, part = _flat_particles(table, source)
    n = table.num_rows
    event = np.repeat(np.arange(n), counts)
    eta, phi = part["eta"], part["phi"]
    _, _, distance1 = relative_coordinates(eta, phi, jets["jet1_eta"][event],
                                           jets["jet1_phi"][event])
    _, _, distance2 = relative_coordinates(eta, phi, jets["jet2_eta"][event],
                                           jets["jet2_phi"][event])
    in_jet1 = (distance1 < radius) & (distance1 <= distance2)
    in_jet2 = (distance2 < radius) & ~in_jet1

    rank1, rank2 = _rank_within_event(in_jet1, counts), _rank_within_event(in_jet2, counts)
    keep1, keep2 = shared_budget(np.bincount(event[in_jet1], minlength=n),
                                 np.bincount(event[in_jet2], minlength=n), max_particles)
    kept1 = in_jet1 & (rank1 < keep1[event])
    kept2 = in_jet2 & (rank2 < keep2[event])
    kept = kept1 | kept2
    slot = np.where(kept1, rank1, keep1[event] + rank2)[kept]
    which = np.where(kept1, 0, 1)[kept]
    event, eta, phi, pt = event[kept], eta[kept], phi[kept], part["pt"][kept]

    def axis(var: str) -> np.ndarray:
        return np.where(which == 0, jets[f"jet1_{var}"][event], jets[f"jet2_{var}"][event])

    jet_pt, jet_eta = axis("pt"), axis("eta")
    jet_energy = np.hypot(jet_pt * np.cosh(jet_eta), axis("mass"))
    delta_eta, delta_phi, delta_r = relative_coordinates(eta, phi, jet_eta, axis("phi"))
    energy = pt * np.cosh(eta)
    columns = (delta_eta, delta_phi, np.log(pt), np.log(energy), np.log(pt / jet_pt),
               np.log(energy / jet_energy), delta_r)
    out["features"][event, slot] = np.stack(columns, axis=-1)
    out["mask"][event, slot] = True
    out["mass_class"][event, slot] = classes[event, which]
    out["jet"][event, slot] = which + 1
