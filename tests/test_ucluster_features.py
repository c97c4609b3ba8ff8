import json

import numpy as np
import pyarrow as pa
import pytest

from hepclust.errors import InputError
from hepclust.io.schema import JETS
from hepclust.ucluster.features import (
    CHARGED_HADRON,
    ELECTRON,
    FEATURES,
    MUON,
    NEUTRAL_HADRON,
    PHOTON,
    UNKNOWN,
    Standardizer,
    mass_bin_labels,
    particle_features,
    select_classes,
)


def jets_table(**overrides) -> pa.Table:
    """Two jets: one near phi = pi with 2 particles, one with 4 (pT-ordered)."""
    columns = {
        "jet_pt": [100.0, 50.0], "jet_eta": [0.5, -1.0], "jet_phi": [3.0, 0.0],
        "jet_mass": [80.0, 20.0], "jet_e": [120.0, 80.0], "n_constituents": [2, 4],
        "contained": [True, False], "label": [0, 2],
        "part_pt": [[60.0, 30.0], [20.0, 10.0, 5.0, 1.0]],
        "part_eta": [[0.625, 0.25], [-1.125, -0.75, -1.0, -1.0]],
        "part_phi": [[-3.0, 2.875], [0.125, -0.25, 0.0, 0.5]],
        "part_e": [[70.0, 40.0], [35.0, 25.0, 8.0, 2.0]],
        "part_pid": [[211, 22], [-11, 130, 13, 0]],
        "part_charge": [[1, 0], [1, 0, -1, 0]],
    }
    return pa.table({**columns, **overrides}, schema=JETS)


def test_features_of_a_hand_made_table():
    features, mask = particle_features(jets_table(), max_particles=3)
    assert features.shape == (2, 3, len(FEATURES))
    assert features.dtype == np.float32
    assert mask.tolist() == [[True, True, False], [True, True, True]]

    # Jet 1, particle 1 sits across the phi = +-pi seam from the jet axis.
    dphi = 2 * np.pi - 6.0
    assert features[0, 0] == pytest.approx(
        [0.125, dphi, np.log(60), np.log(70), np.log(0.6), np.log(70 / 120),
         np.hypot(0.125, dphi), CHARGED_HADRON], abs=1e-6)
    assert features[0, 1] == pytest.approx(
        [-0.25, -0.125, np.log(30), np.log(40), np.log(0.3), np.log(40 / 120),
         np.hypot(0.25, 0.125), PHOTON], abs=1e-6)
    # Jet 2 keeps its three leading particles; the fourth (pid 0) is cut.
    assert features[1, :, 0] == pytest.approx([-0.125, 0.25, 0.0], abs=1e-6)
    assert features[1, :, 1] == pytest.approx([0.125, -0.25, 0.0], abs=1e-6)
    assert features[1, :, 7].tolist() == [ELECTRON, NEUTRAL_HADRON, MUON]
    assert (features[0, 2] == 0).all()


def test_delta_phi_stays_in_half_open_interval():
    phi = [[np.pi - 0.01, -np.pi + 0.01], [-np.pi + 0.02, 0.0, 0.0, 0.0]]
    features, mask = particle_features(
        jets_table(jet_phi=[-np.pi + 0.01, np.pi - 0.02], part_phi=phi), max_particles=4)
    dphi = features[..., 1][mask]
    assert dphi[:3] == pytest.approx([-0.02, 0.0, 0.04], abs=1e-5)
    assert (np.abs(dphi) <= np.pi).all()


def test_unknown_pid_and_more_room_than_particles():
    features, mask = particle_features(jets_table(), max_particles=6)
    assert mask.sum(axis=1).tolist() == [2, 4]
    assert features[1, 3, 7] == UNKNOWN
    assert (features[~mask] == 0).all()


def test_bad_tables_are_refused():
    with pytest.raises(InputError, match="part_e"):
        particle_features(jets_table().drop_columns(["part_e"]), source="jets.parquet")
    with pytest.raises(InputError, match="non-positive"):
        particle_features(jets_table(part_e=[[70.0, 0.0], [35.0, 25.0, 8.0, 2.0]]))
    with pytest.raises(InputError, match="differ in length"):
        particle_features(jets_table(part_pid=[[211], [-11, 130, 13, 0]]))


def test_mass_bins_at_their_edges():
    # 20 bins of 9.5 GeV from 10 to 200 GeV; outside masses go to the first or last bin.
    masses = np.array([0.0, 10.0, 19.49, 19.5, 29.0, 105.0, 190.49, 190.5, 200.0, 900.0],
                      np.float32)
    labels = mass_bin_labels(masses)
    assert labels.dtype == np.int64
    assert labels.tolist() == [0, 0, 0, 1, 2, 10, 18, 19, 19, 19]
    assert mass_bin_labels(np.array([15.0, 25.0]), low=10, high=30, bins=2).tolist() == [0, 1]


def test_mass_bins_refuse_nan():
    with pytest.raises(ValueError, match="finite"):
        mass_bin_labels(np.array([50.0, np.nan]))


def test_standardizer_uses_real_particles_only():
    rng = np.random.default_rng(3)
    features = rng.normal(2.0, 3.0, size=(5, 7, 4))
    mask = rng.random((5, 7)) < 0.6
    mask[0, 0] = True
    features[~mask] = 1e6  # padding that a careless mean would see
    real = features[mask]

    scaler = Standardizer.fit(features, mask, tied=((0, 1),))
    assert scaler.mean == pytest.approx(real.mean(axis=0))
    angle_scale = np.sqrt((real[:, 0].var() + real[:, 1].var()) / 2)
    assert scaler.std == pytest.approx([angle_scale, angle_scale, real[:, 2].std(),
                                        real[:, 3].std()])

    scaled = scaler.transform(features, mask)
    assert scaled.dtype == np.float32
    assert (scaled[~mask] == 0).all()
    assert scaled[mask][:, 2:].mean(axis=0) == pytest.approx([0, 0], abs=1e-6)
    assert scaled[mask][:, 2:].std(axis=0) == pytest.approx([1, 1], abs=1e-6)


def test_standardizer_round_trips_through_json_and_keeps_constant_features():
    features = np.zeros((2, 3, 2))
    features[..., 0] = [[1.0, 3.0, 0.0], [5.0, 0.0, 0.0]]
    features[..., 1] = 4.0  # constant: std 1, so it maps to 0
    mask = np.array([[True, True, False], [True, False, False]])
    scaler = Standardizer.fit(features, mask, tied=())
    back = Standardizer.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert back.mean.tolist() == [3.0, 4.0]
    assert back.std.tolist() == pytest.approx([np.sqrt(8 / 3), 1.0])
    assert back.transform(features, mask)[0, 0] == pytest.approx([-2 / np.sqrt(8 / 3), 0.0])
    with pytest.raises(ValueError, match="positive std"):
        Standardizer.from_dict({"mean": [0.0], "std": [0.0]})


def five_class_jets(toy_jets) -> pa.Table:
    """The toy jets with hls4ml's five labels in turn: W, Z, top, q, g, W, ..."""
    return toy_jets.set_column(toy_jets.schema.get_field_index("label"), "label",
                               pa.array(np.arange(toy_jets.num_rows) % 5, pa.int8()))


def test_select_classes_keeps_the_chosen_classes_relabelled_in_their_order(toy_jets):
    jets = five_class_jets(toy_jets)
    selected, summary = select_classes(jets, ["top", "g", "W"])
    original = jets["label"].to_numpy()
    keep = np.isin(original, [2, 4, 0])
    assert selected.num_rows == keep.sum() == 36
    assert selected["label"].to_numpy().tolist() == \
        [{2: 0, 4: 1, 0: 2}[code] for code in original[keep]]
    assert selected["jet_mass"].to_pylist() == jets["jet_mass"].filter(pa.array(keep)).to_pylist()
    assert selected.schema.equals(jets.schema)
    assert summary == {"classes": ["top", "g", "W"], "jets": {"top": 12, "g": 12, "W": 12},
                       "left_out": {"Z": 12, "q": 12}}
    everything, summary = select_classes(jets, ["W", "Z", "top", "q", "g"])
    assert everything["label"].to_numpy().tolist() == original.tolist()
    assert summary["left_out"] == {}


@pytest.mark.parametrize(("classes", "problem"), [
    (["W", "Z", "top", "q"], "holds no q jets"),
    (["W", "W"], "two or more distinct"),
    (["W"], "two or more distinct"),
    (["W", "H"], "two or more distinct"),
])
def test_select_classes_refuses_classes_the_file_cannot_give(toy_jets, classes, problem):
    with pytest.raises(InputError, match=f"jets.parquet: .*{problem}"):
        select_classes(toy_jets, classes, "jets.parquet")
