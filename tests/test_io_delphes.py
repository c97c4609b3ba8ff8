from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import skhep_testdata
import uproot

from damage import assert_read_or_refused
from hepclust.errors import InputError
from hepclust.io.delphes import PION_MASS, read_delphes
from hepclust.io.schema import PARTICLES

# Ten ttbar events from Delphes 3 with the particle-flow collections (no Tower branch).
REAL = Path(skhep_testdata.data_path("uproot-issue513.root"))


@pytest.fixture(scope="module")
def real_branches():
    with uproot.open(REAL) as handle:
        return handle["Delphes"].arrays(
            ["EFlowTrack.PT", "EFlowTrack.P", "EFlowTrack.PID", "EFlowTrack.Charge",
             "EFlowPhoton.ET", "EFlowPhoton.E", "EFlowNeutralHadron.ET"])


def test_real_file(real_branches):
    particles = read_delphes(REAL)

    assert particles.schema.equals(PARTICLES)
    assert particles.num_rows == 10
    # Every photon and neutral hadron, and the tracks Delphes did not zero (pT = 0).
    tracks = ak.sum(real_branches["EFlowTrack.PT"] > 0, axis=1)
    photons = ak.num(real_branches["EFlowPhoton.ET"])
    hadrons = ak.num(real_branches["EFlowNeutralHadron.ET"])
    counts = [len(event) for event in particles["part_pt"].to_pylist()]
    assert counts == (tracks + photons + hadrons).tolist()

    pt = particles["part_pt"].to_pylist()
    assert all(event == sorted(event, reverse=True) for event in pt)
    assert min(min(event) for event in pt) > 0

    pid = np.concatenate(particles["part_pid"].to_pylist())
    charge = np.concatenate(particles["part_charge"].to_pylist())
    assert (pid == 22).sum() == ak.sum(photons)
    assert (pid == 130).sum() == ak.sum(hadrons)
    assert set(charge[(pid == 22) | (pid == 130)]) == {0}
    assert set(np.sign(pid[charge != 0]) * charge[charge != 0]) <= {-1, 1}


def test_real_energies(real_branches):
    event = read_delphes(REAL, max_events=1).to_pylist()[0]
    hardest = int(ak.argmax(real_branches["EFlowTrack.PT"][0]))
    track_pt = real_branches["EFlowTrack.PT"][0][hardest]
    track_p = real_branches["EFlowTrack.P"][0][hardest]
    slot = event["part_pt"].index(pytest.approx(track_pt))
    assert event["part_e"][slot] == pytest.approx(np.hypot(track_p, PION_MASS))
    assert event["part_pid"][slot] == real_branches["EFlowTrack.PID"][0][hardest]
    assert event["part_charge"][slot] == real_branches["EFlowTrack.Charge"][0][hardest]
    photon = int(ak.argmax(real_branches["EFlowPhoton.ET"][0]))
    slot = event["part_pt"].index(pytest.approx(real_branches["EFlowPhoton.ET"][0][photon]))
    assert event["part_e"][slot] == pytest.approx(real_branches["EFlowPhoton.E"][0][photon])


def test_max_events():
    assert read_delphes(REAL, max_events=3).equals(read_delphes(REAL).slice(0, 3))


def _tree(path, **branches):
    """A TTree named Delphes (uproot writes an RNTuple unless asked for a TTree)."""
    types = {name: values.type.content if isinstance(values, ak.Array) else values.dtype
             for name, values in branches.items()}
    with uproot.recreate(path) as handle:
        tree = handle.mktree("Delphes", types)
        if len(next(iter(branches.values()))):
            tree.extend(branches)
    return path


def _tracks_and_towers(**replace):
    """Two events of the fallback collections, with hand-checkable values."""
    jagged = {
        "Track.PT": [[3.0, 0.0], [4.0]], "Track.Eta": [[0.0, 999.9], [1.0]],
        "Track.Phi": [[0.5, 0.0], [-1.0]], "Track.P": [[3.0, 0.0], [4.0 * np.cosh(1.0)]],
        "Track.PID": [[211, 11], [-321]], "Track.Charge": [[1, -1], [-1]],
        "Track.Mass": [[0.1395, 0.0005], [0.4937]],
        "Tower.ET": [[5.0], [1.0, 2.0]], "Tower.Eta": [[0.0], [0.0, 0.0]],
        "Tower.Phi": [[0.0], [1.0, 2.0]], "Tower.E": [[5.0], [1.0, 2.0]],
    }
    types = {"Track.PID": np.int32, "Track.Charge": np.int32}
    arrays = {name: ak.values_astype(ak.Array(values), types.get(name, np.float32))
              for name, values in jagged.items()}
    return arrays | replace


def test_tracks_and_towers_with_track_mass(tmp_path):
    particles = read_delphes(_tree(tmp_path / "fallback.root", **_tracks_and_towers()))

    assert particles["part_pt"].to_pylist() == [[5.0, 3.0], [4.0, 2.0, 1.0]]
    assert particles["part_pid"].to_pylist() == [[0, 211], [-321, 0, 0]]
    assert particles["part_charge"].to_pylist() == [[0, 1], [-1, 0, 0]]
    energy = particles["part_e"].to_pylist()
    assert energy[0] == pytest.approx([5.0, np.hypot(3.0, 0.1395)])
    assert energy[1][0] == pytest.approx(np.hypot(4.0 * np.cosh(1.0), 0.4937))


@pytest.mark.parametrize(("change", "problem"), [
    ({"Track.Eta": ak.Array([[1.0, np.nan], [0.5]])},
     "Track.Eta holds NaN"),
    ({"Tower.E": np.array([5.0, 3.0], dtype=np.float32)}, "Tower.E is not a list per event"),
    ({"Tower.E": ak.Array([[5.0, 1.0], [1.0, 2.0]])}, "Tower.E differs in length"),
])
def test_malformed_branches(tmp_path, change, problem):
    path = _tree(tmp_path / "bad.root", **_tracks_and_towers(**change))
    with pytest.raises(InputError, match=problem) as error:
        read_delphes(path)
    assert "bad.root" in str(error.value)


def test_missing_branches(tmp_path):
    branches = _tracks_and_towers()
    del branches["Tower.E"]
    with pytest.raises(InputError, match=r"missing\.root: has neither the particle-flow"):
        read_delphes(_tree(tmp_path / "missing.root", **branches))


def test_no_tree_and_zero_events(tmp_path):
    with uproot.recreate(tmp_path / "notree.root") as handle:
        handle.mktree("Events", {"x": np.float64}).extend({"x": np.zeros(2)})
    with pytest.raises(InputError, match=r"notree\.root: has no tree 'Delphes'"):
        read_delphes(tmp_path / "notree.root")
    empty = {name: values[:0] for name, values in _tracks_and_towers().items()}
    with pytest.raises(InputError, match=r"zero\.root: holds no events"):
        read_delphes(_tree(tmp_path / "zero.root", **empty))


def test_damaged_files(tmp_path, garbage_file, truncated_copy, empty_file):
    for path in (garbage_file(tmp_path / "garbage.root"),
                 truncated_copy(REAL, tmp_path / "half.root"),
                 empty_file(tmp_path / "empty.root"), tmp_path / "absent.root"):
        with pytest.raises(InputError, match=path.name):
            read_delphes(path)


def test_a_corrupted_basket_is_named(tmp_path):
    """Every zlib-compressed block ("ZL" header) with a byte of its data changed: the
    checksum fails in zlib (zlib.error, not an OSError)."""
    data = bytearray(REAL.read_bytes())
    start = 0
    while (start := data.find(b"ZL\x08", start + 1)) >= 0:
        data[start + 20] ^= 0xFF
    (tmp_path / "basket.root").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"basket\.root: not a readable Delphes ROOT file "
                                         r"\(Error -3 while decompressing"):
        read_delphes(tmp_path / "basket.root")


def test_damaged_copies_give_particles_or_an_input_error(tmp_path):
    # A dozen cases: the real file is 1.2 MB and each read decompresses it.
    assert assert_read_or_refused(read_delphes, REAL, tmp_path / "damaged", cases=12) > 0
