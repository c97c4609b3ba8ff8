"""ABCNet's per-particle inputs (UCluster, Table I), the jet-mass labels of the pretraining
task, and the feature standardisation fitted on the training set.

A `JETS` table becomes dense arrays: ``features`` (jet, particle, feature), float32, and
``mask`` (jet, particle), True for real particles. Jets with more than `max_particles`
particles keep the leading ones (the lists are pT-ordered); shorter jets are zero-padded.

PID: Table I has a single "PID" column. Raw PDG numbers carry no useful magnitude, so the
column holds the integer class of `pid_class` (0 unknown, 1 charged hadron, 2 neutral
hadron, 3 photon, 4 electron, 5 muon: the five particle-flow types ParticleNet separates).
The hls4ml files carry no PDG id, so their particles are all class 0. (UCluster's own data
preparation put the hls4ml ``j1_costhetarel`` column in this slot.)
"""

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hepclust.errors import InputError
from hepclust.features.kinematics import delta_r, wrap_phi
from hepclust.io.schema import JET_LABELS, JETS, check_contract

FEATURES = ("delta_eta", "delta_phi", "log_pt", "log_e", "log_pt_rel", "log_e_rel", "delta_r",
            "pid_class")
# The (delta_eta, delta_phi) columns: ABCNet's first kNN works in this plane.
ANGLES = (0, 1)

UNKNOWN, CHARGED_HADRON, NEUTRAL_HADRON, PHOTON, ELECTRON, MUON = range(6)


def pid_class(pid: np.ndarray, charge: np.ndarray) -> np.ndarray:
    """The particle-flow class of each PDG id: 0 for id 0 (no PID, e.g. a Delphes tower),
    photon (22), electron (+-11), muon (+-13), else a hadron, charged if `charge` != 0."""
    magnitude = np.abs(pid)
    hadron = np.where(charge != 0, CHARGED_HADRON, NEUTRAL_HADRON)
    return np.select([magnitude == 0, magnitude == 22, magnitude == 11, magnitude == 13],
                     [UNKNOWN, PHOTON, ELECTRON, MUON], hadron).astype(np.int64)


def select_classes(jets: pa.Table, classes: Sequence[str],
                   source: str | Path = "jets table") -> tuple[pa.Table, dict]:
    """The jets of `classes` (names of `JET_LABELS`), relabelled 0..n-1 in the order given,
    and a summary: the classes, the jets kept per class and those left out per class.

    The one place where the analysis' classes are chosen: downstream stages see labels
    0..n-1 only. Fails, naming `source`, if a chosen class has no jet.
    """
    check_contract(jets.schema, JETS, source)
    unknown = [name for name in classes if name not in JET_LABELS]
    if unknown or len(set(classes)) != len(classes) or len(classes) < 2:
        raise InputError(source, f"classes {list(classes)}: need two or more distinct names "
                                 f"among {', '.join(JET_LABELS)}")
    names = {code: name for name, code in JET_LABELS.items()}
    label = jets["label"].to_numpy()
    present = np.unique(label)
    strange = [int(code) for code in present if int(code) not in names]
    if strange:
        raise InputError(source, f"label column holds unknown code(s) {strange}")
    counts = {names[int(code)]: int((label == code).sum()) for code in present}
    missing = [name for name in classes if name not in counts]
    if missing:
        raise InputError(source, f"holds no {', '.join(missing)} jets (its classes: "
                                 f"{', '.join(counts)}); choose jet_clustering.classes "
                                 "among those")
    new_label = np.full(len(label), -1, np.int64)
    for index, name in enumerate(classes):
        new_label[label == JET_LABELS[name]] = index
    keep = new_label >= 0
    selected = jets.filter(pa.array(keep)).set_column(
        jets.schema.get_field_index("label"), JETS.field("label"),
        pa.array(new_label[keep].astype(np.int8)))
    summary = {"classes": list(classes),
               "jets": {name: counts[name] for name in classes},
               "left_out": {name: n for name, n in counts.items() if name not in classes}}
    return selected, summary


def particle_features(jets: pa.Table, max_particles: int = 100,
                      source: str | Path = "jets table") -> tuple[np.ndarray, np.ndarray]:
    """The `FEATURES` of each jet's first `max_particles` particles: (features, mask).

    Angles are relative to the jet axis, delta-phi wrapped into (-pi, pi]; the ratios use
    the table's jet_pt and jet_e. Padding is 0 and masked. `source` names the table in errors.
    """
    check_contract(jets.schema, JETS, source)
    if max_particles < 1:
        raise ValueError(f"max_particles must be positive, got {max_particles}")
    names = ("pt", "eta", "phi", "e", "pid", "charge")
    lengths = [pc.fill_null(pc.list_value_length(jets[f"part_{name}"]), 0).to_numpy()
               for name in names]
    if any((length != lengths[0]).any() for length in lengths[1:]):
        raise InputError(source, "the part_* lists of a jet differ in length")
    counts = lengths[0].astype(np.int64)
    flat = {name: pc.list_flatten(jets[f"part_{name}"]).to_numpy() for name in names}

    jet = np.repeat(np.arange(jets.num_rows), counts)
    slot = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    keep = slot < max_particles
    jet, slot = jet[keep], slot[keep]
    part = {name: values[keep] for name, values in flat.items()}
    pt, eta, phi, energy = (part[name].astype(np.float64) for name in ("pt", "eta", "phi", "e"))
    jet_pt, jet_eta, jet_phi, jet_e = (jets[f"jet_{name}"].to_numpy().astype(np.float64)[jet]
                                       for name in ("pt", "eta", "phi", "e"))
    if not (pt > 0).all() or not (energy > 0).all() or not (jet_pt > 0).all() \
            or not (jet_e > 0).all():
        raise InputError(source, "a particle or a jet has a non-positive pT or energy")

    columns = (
        eta - jet_eta,
        wrap_phi(phi - jet_phi),
        np.log(pt),
        np.log(energy),
        np.log(pt / jet_pt),
        np.log(energy / jet_e),
        delta_r(eta, phi, jet_eta, jet_phi),
        pid_class(part["pid"], part["charge"]),
    )
    features = np.zeros((jets.num_rows, max_particles, len(FEATURES)), np.float32)
    features[jet, slot] = np.stack(columns, axis=-1)
    mask = np.zeros((jets.num_rows, max_particles), bool)
    mask[jet, slot] = True
    return features, mask


def mass_bin_labels(jet_mass: np.ndarray, low: float = 10.0, high: float = 200.0,
                    bins: int = 20) -> np.ndarray:
    """The pretraining class of each jet: which of `bins` equal-width mass intervals from
    `low` to `high` GeV (lower edge included) holds it. Masses below `low` go to the first
    bin and masses at or above `high` to the last, so every jet gets a label."""
    mass = np.asarray(jet_mass, dtype=np.float64)
    if not np.isfinite(mass).all():
        raise ValueError("jet masses must be finite")
    inner_edges = np.linspace(low, high, bins + 1)[1:-1]
    return np.digitize(mass, inner_edges).astype(np.int64)


@dataclass(frozen=True, eq=False)
class Standardizer:
    """Per-feature shift and scale, ``(x - mean) / std``, for real particles only.

    `fit` takes the mean and standard deviation over the real particles of the training
    set; a constant feature gets std 1. Features in one `tied` group share one scale (the
    root mean square of their standard deviations) so that distances in that subspace keep
    their meaning: by default delta-eta and delta-phi, where ABCNet's first kNN looks.
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, features: np.ndarray, mask: np.ndarray,
            tied: Sequence[Sequence[int]] = (ANGLES,)) -> "Standardizer":
        real = np.asarray(features, np.float64)[np.asarray(mask, bool)]
        if len(real) == 0:
            raise ValueError("cannot fit a standardizer without real particles")
        mean, std = real.mean(axis=0), real.std(axis=0)
        for group in tied:
            std[list(group)] = np.sqrt(np.mean(std[list(group)] ** 2))
        std[std == 0] = 1.0
        return cls(mean, std)

    def transform(self, features: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Standardised float32 features; padding stays 0."""
        scaled = (np.asarray(features, np.float64) - self.mean) / self.std
        return np.where(np.asarray(mask, bool)[..., None], scaled, 0).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> "Standardizer":
        mean, std = np.asarray(data["mean"], np.float64), np.asarray(data["std"], np.float64)
        if mean.shape != std.shape or mean.ndim != 1 or not (std > 0).all():
            raise ValueError("a standardizer needs equal-length mean and positive std lists")
        return cls(mean, std)
