import h5py
import numpy as np
import pyarrow as pa
import pytest

from damage import assert_read_or_refused
from hepclust.errors import InputError
from hepclust.io.hls4ml import (
    CONSTITUENT_FEATURES,
    JET_FEATURES,
    PDGID_FEATURE,
    iter_hls4ml,
    pdg_charge,
    read_hls4ml,
    write_hls4ml,
)
from hepclust.io.schema import JETS

# Three jets in four constituent slots, zero-padded; jet 0's constituents out of pT order.
PT = [[10.0, 30.0, 0, 0], [5.0, 0, 0, 0], [20.0, 10.0, 5.0, 1.0]]
ETA = [[0.1, -0.2, 0, 0], [1.5, 0, 0, 0], [0.0, 0.1, 0.2, 0.3]]
PHI = [[0.0, np.pi / 2, 0, 0], [-1.0, 0, 0, 0], [0.5, 0.5, 0.5, 0.5]]
E = [[11.0, 31.0, 0, 0], [12.0, 0, 0, 0], [21.0, 11.0, 6.0, 2.0]]
PDGID = [[211, -11, 0, 0], [22, 0, 0, 0], [-211, 130, 2212, 13]]
FLAGS = ["j_t", "j_g", "j_w"]  # labels 2, 4, 0


def _write(path, constituent_names=CONSTITUENT_FEATURES, particle_names=None, jet_names=None,
           n_jets=3, **replace):
    """A file in the released layout: 16 columns named by 17 names, 59 jet columns."""
    values = {"j1_pt": PT, "j1_eta": ETA, "j1_phi": PHI, "j1_e": E, PDGID_FEATURE: PDGID}
    constituents = np.zeros((3, 4, len(constituent_names)))
    for index, name in enumerate(constituent_names):
        constituents[..., index] = values.get(name, 0.5)
    jets = np.full((3, len(JET_FEATURES)), -7.0)  # what a reader must not pick up
    for name in ("j_g", "j_q", "j_w", "j_z", "j_t", "j_undef"):
        jets[:, JET_FEATURES.index(name)] = 0
    jets[np.arange(3), [JET_FEATURES.index(f) for f in FLAGS]] = 1
    jets[:, JET_FEATURES.index("j_pt")] = [41.0, 5.0, 35.0]
    jets[:, JET_FEATURES.index("j_eta")] = [0.0, 1.5, 0.1]
    jets[:, JET_FEATURES.index("j_mass")] = [9.0, 0.1, 4.0]
    datasets = {
        "jetConstituentList": constituents[:n_jets],
        "jets": jets[:n_jets],
        "particleFeatureNames": [*constituent_names, PDGID_FEATURE]
        if particle_names is None else particle_names,
        "jetFeatureNames": JET_FEATURES if jet_names is None else jet_names,
        "jetImage": np.ones((n_jets, 2, 2)),
    } | replace
    with h5py.File(path, "w") as handle:
        for name, data in datasets.items():
            if data is None:
                continue
            handle[name] = np.array([n.encode() for n in data]) if name.endswith("Names") \
                else data
    return path


def test_values_against_a_hand_computation(tmp_path):
    jets = read_hls4ml(_write(tmp_path / "jetImage_0_100p_0_3.h5"))

    assert jets.schema.equals(JETS)
    assert jets["part_pt"].to_pylist() == [[30.0, 10.0], [5.0], [20.0, 10.0, 5.0, 1.0]]
    assert jets["part_e"].to_pylist()[0] == [31.0, 11.0]
    assert jets["part_eta"].to_pylist()[0] == pytest.approx([-0.2, 0.1])
    assert jets["n_constituents"].to_pylist() == [2, 1, 4]
    assert jets["label"].to_pylist() == [2, 4, 0]
    assert jets["jet_pt"].to_pylist() == [41.0, 5.0, 35.0]
    assert jets["jet_mass"].to_pylist() == pytest.approx([9.0, 0.1, 4.0])
    # phi and E from the constituents: jet 0 is (10, 0) + (0, 30) in (px, py).
    assert jets["jet_phi"].to_pylist() == pytest.approx([np.arctan2(30, 10), -1.0, 0.5])
    assert jets["jet_e"].to_pylist() == [42.0, 12.0, 40.0]
    assert jets["contained"].null_count == 3
    # The released files name j1_pdgid without storing it: no PID, no charge.
    assert jets["part_pid"].to_pylist()[2] == [0, 0, 0, 0]
    assert jets["part_charge"].to_pylist()[2] == [0, 0, 0, 0]


def test_columns_are_picked_by_name(tmp_path):
    shuffled = tuple(reversed(CONSTITUENT_FEATURES))
    reference = read_hls4ml(_write(tmp_path / "a.h5"))
    assert read_hls4ml(_write(tmp_path / "b.h5", constituent_names=shuffled)).equals(reference)


def test_pid_and_charge_where_the_file_stores_pdgid(tmp_path):
    path = _write(tmp_path / "pid.h5", constituent_names=(*CONSTITUENT_FEATURES, PDGID_FEATURE))
    jets = read_hls4ml(path)
    assert jets["part_pid"].to_pylist() == [[-11, 211], [22], [-211, 130, 2212, 13]]
    assert jets["part_charge"].to_pylist() == [[1, 1], [0], [-1, 0, 1, -1]]


def test_pdg_charge():
    ids = np.array([11, -11, 13, 211, -211, 321, -2212, 22, 130, 2112, 3334, 0, 999])
    assert pdg_charge(ids).tolist() == [-1, 1, -1, 1, -1, 1, -1, 0, 0, 0, -1, 0, 0]


def test_chunks_and_max_jets(tmp_path):
    path = _write(tmp_path / "j.h5")
    whole = read_hls4ml(path)
    assert pa.concat_tables(iter_hls4ml(path, chunk_size=1)).equals(whole)
    assert read_hls4ml(path, max_jets=2).equals(whole.slice(0, 2))


def test_unused_columns_may_hold_nan(tmp_path):
    jets = np.zeros((3, len(JET_FEATURES)))
    jets[np.arange(3), [JET_FEATURES.index(f) for f in FLAGS]] = 1
    jets[:, JET_FEATURES.index("j_zlogz")] = np.nan
    assert read_hls4ml(_write(tmp_path / "z.h5", jets=jets)).num_rows == 3


def test_writer_round_trip_and_layout(tmp_path):
    original = read_hls4ml(_write(tmp_path / "source.h5",
                                  constituent_names=(*CONSTITUENT_FEATURES, PDGID_FEATURE)))
    path = tmp_path / "written.h5"
    write_hls4ml(path, original, max_constituents=6)

    with h5py.File(path) as handle:
        assert handle["jetConstituentList"].shape == (3, 6, 16)
        assert handle["jets"].shape == (3, 59)
        assert [n.decode() for n in handle["particleFeatureNames"]] == [
            *CONSTITUENT_FEATURES, PDGID_FEATURE]
        assert [n.decode() for n in handle["jetFeatureNames"]] == list(JET_FEATURES)
        flags = handle["jets"][:, -6:]
    assert flags.tolist() == [[0, 0, 0, 0, 1, 0], [1, 0, 0, 0, 0, 0], [0, 0, 1, 0, 0, 0]]

    again = read_hls4ml(path)
    same = ["part_pt", "part_eta", "part_phi", "part_e", "jet_pt", "jet_eta", "jet_mass",
            "n_constituents", "label"]
    assert again.select(same).equals(original.select(same))
    for recomputed in ("jet_phi", "jet_e"):
        assert again[recomputed].to_pylist() == pytest.approx(original[recomputed].to_pylist())
    assert again["part_pid"].to_pylist()[0] == [0, 0]  # the released layout has no PID column
    with_pid = tmp_path / "with_pid.h5"
    write_hls4ml(with_pid, original, with_pdgid=True)
    pid = ["part_pid", "part_charge"]
    assert read_hls4ml(with_pid).select(pid).equals(original.select(pid))


@pytest.mark.parametrize(("change", "problem"), [
    ({"jets": None}, "no dataset jets"),
    ({"jetConstituentList": np.zeros((3, 4))}, "expected 3 axes"),
    ({"jets": np.zeros((2, len(JET_FEATURES)))}, "has 3 jets but jets has 2"),
    ({"particleFeatureNames": ["j1_pt", "j1_eta"]}, "2 names for 16 columns"),
    ({"particleFeatureNames": [n.replace("j1_phi", "j1_phi0") for n in CONSTITUENT_FEATURES]},
     "particleFeatureNames lacks j1_phi"),
    ({"jetFeatureNames": [n.replace("j_t", "j_top") for n in JET_FEATURES]},
     "jetFeatureNames lacks j_t"),
    ({"jets": np.zeros((3, len(JET_FEATURES)))}, "without exactly one of the flags"),
])
def test_malformed_files_are_rejected(tmp_path, change, problem):
    path = _write(tmp_path / "bad.h5", **change)
    with pytest.raises(InputError, match=problem) as error:
        read_hls4ml(path)
    assert "bad.h5" in str(error.value)


def test_nan_constituent(tmp_path):
    constituents = np.zeros((3, 4, 16))
    constituents[0, 0, CONSTITUENT_FEATURES.index("j1_eta")] = np.nan
    path = _write(tmp_path / "nan.h5", jetConstituentList=constituents)
    with pytest.raises(InputError, match=r"nan\.h5: jetConstituentList holds 1 NaN"):
        read_hls4ml(path)


def test_zero_jets(tmp_path):
    with pytest.raises(InputError, match=r"none\.h5: holds no jets"):
        read_hls4ml(_write(tmp_path / "none.h5", n_jets=0))


def test_damaged_files(tmp_path, garbage_file, truncated_copy, empty_file):
    write_hls4ml(tmp_path / "full.h5", read_hls4ml(_write(tmp_path / "src.h5")))
    for path in (garbage_file(tmp_path / "garbage.h5"),
                 truncated_copy(tmp_path / "full.h5", tmp_path / "half.h5"),
                 empty_file(tmp_path / "empty.h5"), tmp_path / "absent.h5"):
        with pytest.raises(InputError, match=path.name):
            read_hls4ml(path)


def test_a_corrupt_metadata_heap_is_named(tmp_path):
    """The root group's local heap with a free-list offset past its end: h5py raises
    RuntimeError ('bad heap free list'), not OSError."""
    data = bytearray(_write(tmp_path / "good.h5").read_bytes())
    heap = data.find(b"HEAP")
    data[heap + 16: heap + 24] = (0x7777).to_bytes(8, "little")
    (tmp_path / "heap.h5").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"heap\.h5: not a readable HDF5 file .*bad heap"):
        read_hls4ml(tmp_path / "heap.h5")


def test_constituents_stored_as_strings_are_named(tmp_path):
    path = _write(tmp_path / "strings.h5")
    with h5py.File(path, "a") as handle:
        values = handle["jetConstituentList"][()]
        del handle["jetConstituentList"]
        handle["jetConstituentList"] = values.astype("S8")
    with pytest.raises(InputError, match=r"strings\.h5: dataset jetConstituentList holds \|S8 "
                                         "values, not numbers"):
        read_hls4ml(path)


def test_damaged_copies_give_jets_or_an_input_error(tmp_path):
    source = _write(tmp_path / "jetImage_0_30p_0_3.h5")
    assert assert_read_or_refused(read_hls4ml, source, tmp_path / "damaged") > 0
