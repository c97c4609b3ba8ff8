"""The hls4ml LHC jet data set (Zenodo 3602260): HDF5 files of ~1 TeV jets.

Each file holds ``jetConstituentList`` (jet, constituent, feature), zero-padded to 30,
50, 100 or 150 constituents, ``jets`` (jet, 59): 53 jet observables then the one-hot
class flags ``j_g, j_q, j_w, j_z, j_t`` and an unused ``j_undef``, and the byte-string
datasets ``particleFeatureNames`` and ``jetFeatureNames`` naming those columns (images
such as ``jetImage`` are ignored). Columns are picked by name. In the released files
``particleFeatureNames`` lists 17 names for 16 columns: the last, ``j1_pdgid``, has no
data, so PID and charge are read only where a file really has that column, else 0.
The files carry no jet phi nor energy; both are taken from the stored constituents.
Whether a jet's decay products are contained is unknown, so ``contained`` is null.
"""

from collections.abc import Iterator
from pathlib import Path

import awkward as ak
import h5py
import numpy as np
import pyarrow as pa
from tqdm import tqdm

from hepclust.errors import InputError
from hepclust.features.kinematics import wrap_phi
from hepclust.io.hdf5 import check_finite, dataset, names, open_hdf5, read_errors
from hepclust.io.parquet import atomic_path, conform
from hepclust.io.schema import JET_LABELS, JETS

CONSTITUENT_FEATURES = (
    "j1_px", "j1_py", "j1_pz", "j1_e", "j1_erel", "j1_pt", "j1_ptrel", "j1_eta",
    "j1_etarel", "j1_etarot", "j1_phi", "j1_phirel", "j1_phirot", "j1_deltaR",
    "j1_costheta", "j1_costhetarel",
)
PDGID_FEATURE = "j1_pdgid"
JET_FEATURES = (
    "j_ptfrac", "j_pt", "j_eta", "j_mass",
    "j_tau1_b1", "j_tau2_b1", "j_tau3_b1", "j_tau1_b2", "j_tau2_b2", "j_tau3_b2",
    "j_tau32_b1", "j_tau32_b2", "j_zlogz",
    "j_c1_b0", "j_c1_b1", "j_c1_b2", "j_c2_b1", "j_c2_b2", "j_d2_b1", "j_d2_b2",
    "j_d2_a1_b1", "j_d2_a1_b2", "j_m2_b1", "j_m2_b2", "j_n2_b1", "j_n2_b2",
    "j_tau1_b1_mmdt", "j_tau2_b1_mmdt", "j_tau3_b1_mmdt", "j_tau1_b2_mmdt",
    "j_tau2_b2_mmdt", "j_tau3_b2_mmdt", "j_tau32_b1_mmdt", "j_tau32_b2_mmdt",
    "j_c1_b0_mmdt", "j_c1_b1_mmdt", "j_c1_b2_mmdt", "j_c2_b1_mmdt", "j_c2_b2_mmdt",
    "j_d2_b1_mmdt", "j_d2_b2_mmdt", "j_d2_a1_b1_mmdt", "j_d2_a1_b2_mmdt",
    "j_m2_b1_mmdt", "j_m2_b2_mmdt", "j_n2_b1_mmdt", "j_n2_b2_mmdt",
    "j_mass_trim", "j_mass_mmdt", "j_mass_prun", "j_mass_sdb2", "j_mass_sdm1",
    "j_multiplicity",
    "j_g", "j_q", "j_w", "j_z", "j_t", "j_undef",
)
# The class flag of each of our jet labels (`JET_LABELS`).
LABEL_FLAGS = {"W": "j_w", "Z": "j_z", "top": "j_t", "q": "j_q", "g": "j_g"}

# Charge of the long-lived particles by |PDG id|; an antiparticle's id has the other sign.
_CHARGED_IDS = np.array([11, 13, 15, 211, 321, 2212, 3112, 3222, 3312, 3334])
_CHARGES = np.array([-1, -1, -1, 1, 1, 1, -1, 1, -1, -1])


def pdg_charge(pid: np.ndarray) -> np.ndarray:
    """Electric charge of each PDG id; 0 for neutral and unlisted ids."""
    magnitude = np.abs(pid)
    slot = np.clip(np.searchsorted(_CHARGED_IDS, magnitude), 0, len(_CHARGED_IDS) - 1)
    listed = _CHARGED_IDS[slot] == magnitude
    return np.where(listed, np.sign(pid) * _CHARGES[slot], 0).astype(np.int8)


def read_hls4ml(path: str | Path, max_jets: int | None = None) -> pa.Table:
    """All jets of one file (or the first `max_jets`) as a table in the `JETS` schema."""
    return pa.concat_tables(iter_hls4ml(path, max_jets))


def iter_hls4ml(path: str | Path, max_jets: int | None = None,
                chunk_size: int = 2048) -> Iterator[pa.Table]:
    """The jets of one file as `JETS` tables of at most `chunk_size` rows."""
    path = Path(path)
    with open_hdf5(path) as handle:
        constituents = dataset(handle, "jetConstituentList", 3, path, numeric=True)
        jets = dataset(handle, "jets", 2, path, numeric=True)
        if constituents.shape[0] != jets.shape[0]:
            raise InputError(path, f"jetConstituentList has {constituents.shape[0]} jets "
                                   f"but jets has {jets.shape[0]}")
        particle_names = _column_names(handle, "particleFeatureNames", constituents, path)
        wanted = ["j1_pt", "j1_eta", "j1_phi", "j1_e"]
        if PDGID_FEATURE in particle_names:
            wanted.append(PDGID_FEATURE)
        part_index = _indices(particle_names, wanted, "particleFeatureNames", path)
        jet_index = _indices(_column_names(handle, "jetFeatureNames", jets, path),
                             ["j_pt", "j_eta", "j_mass", *LABEL_FLAGS.values()], "jetFeatureNames",
                             path)
        n_jets = jets.shape[0] if max_jets is None else min(max_jets, jets.shape[0])
        if n_jets == 0:
            raise InputError(path, "holds no jets")
        with tqdm(total=n_jets, unit="jet", desc=path.name, disable=None) as bar:
            for start in range(0, n_jets, chunk_size):
                stop = min(start + chunk_size, n_jets)
                with read_errors(path):
                    block = constituents[start:stop][..., part_index]
                    jet_block = jets[start:stop][:, jet_index]
                check_finite(block, "jetConstituentList", path)
                check_finite(jet_block, "jets", path)
                yield _jets_table(block, jet_block, path)
                bar.update(stop - start)


def _column_names(handle: h5py.File, name: str, data: h5py.Dataset, path: Path) -> list[str]:
    found = names(handle, name, path)
    if len(found) < data.shape[-1]:
        raise InputError(path, f"{name} has {len(found)} names for {data.shape[-1]} columns "
                               f"of {data.name.lstrip('/')}")
    return found[: data.shape[-1]]


def _indices(available: list[str], wanted: list[str], where: str, path: Path) -> list[int]:
    missing = [name for name in wanted if name not in available]
    if missing:
        raise InputError(path, f"{where} lacks {', '.join(missing)}")
    return [available.index(name) for name in wanted]


def _jets_table(block: np.ndarray, jet_block: np.ndarray, path: Path) -> pa.Table:
    """`block`: (jet, constituent, [pt, eta, phi, e, pdgid?]); `jet_block`: (jet, [pt, eta,
    mass, flags...])."""
    pt, eta, phi, energy = (block[..., i] for i in range(4))
    pid = np.rint(block[..., 4]).astype(np.int32) if block.shape[-1] == 5 else \
        np.zeros(pt.shape, np.int32)
    flags = jet_block[:, 3:]
    if not np.isin(flags, (0, 1)).all() or not (flags.sum(axis=1) == 1).all():
        raise InputError(path, "jets has a jet without exactly one of the flags "
                               + ", ".join(LABEL_FLAGS.values()))

    real = pt > 0
    order = np.argsort(-pt, axis=1, kind="stable")
    kept = np.take_along_axis(real, order, axis=1)
    counts = real.sum(axis=1)
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())

    def listed(values: np.ndarray) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, np.take_along_axis(values, order, axis=1)[kept])

    sum_px = np.where(real, pt * np.cos(phi), 0).sum(axis=1)
    sum_py = np.where(real, pt * np.sin(phi), 0).sum(axis=1)
    return pa.table({
        "jet_pt": jet_block[:, 0], "jet_eta": jet_block[:, 1],
        "jet_phi": np.arctan2(sum_py, sum_px), "jet_mass": jet_block[:, 2],
        "jet_e": np.where(real, energy, 0).sum(axis=1),
        "n_constituents": counts,
        "contained": pa.nulls(len(counts), pa.bool_()),
        "label": np.array([JET_LABELS[label] for label in LABEL_FLAGS])[flags.argmax(axis=1)],
        "part_pt": listed(pt), "part_eta": listed(eta), "part_phi": listed(phi),
        "part_e": listed(energy), "part_pid": listed(pid), "part_charge": listed(pdg_charge(pid)),
    }).cast(JETS)


def write_hls4ml(path: str | Path, jets: pa.Table, max_constituents: int = 100,
                 with_pdgid: bool = False) -> None:
    """Write a `JETS` table in the hls4ml layout, atomically.

    Constituents beyond `max_constituents` are cut; features the table cannot give
    (rotated coordinates, costhetarel, the substructure observables) are zero.
    `with_pdgid` writes ``j1_pdgid`` as a 17th column, which the released files lack.
    """
    jets = conform(jets, JETS, path)
    part = {name: _padded(jets[f"part_{name}"], max_constituents)
            for name in ("pt", "eta", "phi", "e", "pid")}
    jet = {name: jets[f"jet_{name}"].to_numpy()[:, None] for name in ("pt", "eta", "phi", "e")}
    real = part["pt"] > 0

    def ratio(numerator, denominator):
        return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                         where=real & (denominator != 0))

    pt, eta, phi = part["pt"], part["eta"], part["phi"]
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), np.where(real, pt * np.sinh(eta), 0)
    etarel = np.where(real, eta - jet["eta"], 0)
    phirel = np.where(real, wrap_phi(phi - jet["phi"]), 0)
    features = {
        "j1_px": px, "j1_py": py, "j1_pz": pz, "j1_e": part["e"],
        "j1_erel": ratio(part["e"], jet["e"]), "j1_pt": pt, "j1_ptrel": ratio(pt, jet["pt"]),
        "j1_eta": eta, "j1_etarel": etarel, "j1_phi": phi, "j1_phirel": phirel,
        "j1_deltaR": np.hypot(etarel, phirel), "j1_costheta": ratio(pz, np.hypot(pt, pz)),
        PDGID_FEATURE: part["pid"],
    }
    columns = [*CONSTITUENT_FEATURES, PDGID_FEATURE] if with_pdgid else CONSTITUENT_FEATURES
    constituents = np.zeros((jets.num_rows, max_constituents, len(columns)))
    for index, name in enumerate(columns):
        constituents[..., index] = features.get(name, 0)

    table = np.zeros((jets.num_rows, len(JET_FEATURES)))
    for name, column in (("j_pt", "jet_pt"), ("j_eta", "jet_eta"), ("j_mass", "jet_mass"),
                         ("j_multiplicity", "n_constituents")):
        table[:, JET_FEATURES.index(name)] = jets[column].to_numpy()
    flag_column = {JET_LABELS[label]: JET_FEATURES.index(flag)
                   for label, flag in LABEL_FLAGS.items()}
    labels = jets["label"].to_numpy()
    if not np.isin(labels, list(flag_column)).all():
        raise InputError(path, f"jet labels must be among {sorted(flag_column)}")
    table[np.arange(jets.num_rows), [flag_column[label] for label in labels]] = 1

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as handle:
        handle["jetConstituentList"] = constituents
        handle["jets"] = table
        handle["particleFeatureNames"] = _encoded([*CONSTITUENT_FEATURES, PDGID_FEATURE])
        handle["jetFeatureNames"] = _encoded(JET_FEATURES)


def _padded(column: pa.ChunkedArray, length: int) -> np.ndarray:
    values = ak.pad_none(ak.from_arrow(column), length, clip=True)
    return ak.to_numpy(ak.fill_none(values, 0)).astype(np.float64)


def _encoded(strings: list[str] | tuple[str, ...]) -> np.ndarray:
    return np.array([string.encode() for string in strings])
