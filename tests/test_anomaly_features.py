import numpy as np
import pyarrow as pa
import pytest

from hepclust.anomaly.features import (
    FEATURES,
    GLOBAL_FEATURES,
    NUM_CLASSES,
    dijet_inputs,
    jet_mass_class,
    relative_coordinates,
    shared_budget,
)
from hepclust.errors import InputError
from hepclust.io.schema import DIJETS

f32 = np.float32


def dijets_table(**overrides) -> pa.Table:
    """Three events. Event 0: jet1 (500 GeV) near phi = pi with particles 0 and 2, jet2
    (95 GeV) with particles 1 and 4; particle 3 is in neither. Event 1 has no particles;
    event 2 has particles in jet1 only."""
    columns = {
        "jet1_pt": [900.0, 1500.0, 1400.0], "jet1_eta": [0.0, 0.0, 1.0],
        "jet1_phi": [3.0, 0.0, 1.0], "jet1_mass": [500.0, 5.0, 1500.0],
        "jet1_tau21": [0.3, 0.5, 0.6],
        "jet2_pt": [800.0, 1400.0, 1300.0], "jet2_eta": [0.5, 0.0, -1.0],
        "jet2_phi": [-0.2, 3.0, -2.0], "jet2_mass": [95.0, 0.0, 30.0],
        "jet2_tau21": [0.7, 0.8, 0.9],
        "mjj": [3500.0, 2900.0, 4000.0], "label": [1, 0, 0],
        "part_pt": [[500.0, 400.0, 100.0, 50.0, 20.0], [], [300.0, 200.0]],
        "part_eta": [[0.1, 0.6, -0.2, 3.0, 0.3], [], [1.1, 0.9]],
        "part_phi": [[-3.1, -0.1, 2.9, 1.5, -0.3], [], [1.0, 1.2]],
    }
    return pa.table({**columns, **overrides}, schema=DIJETS)


def expected_features(pt, eta, phi, jet_pt, jet_eta, jet_phi, jet_mass):
    """Table III by hand, from the float32 values the table stores."""
    pt, eta, phi, jet_pt, jet_eta, jet_phi, jet_mass = (
        float(f32(v)) for v in (pt, eta, phi, jet_pt, jet_eta, jet_phi, jet_mass))
    energy = pt * np.cosh(eta)
    jet_energy = np.sqrt((jet_pt * np.cosh(jet_eta)) ** 2 + jet_mass**2)
    delta_phi = (phi - jet_phi + np.pi) % (2 * np.pi) - np.pi
    return [eta - jet_eta, delta_phi, np.log(pt), np.log(energy), np.log(pt / jet_pt),
            np.log(energy / jet_energy), np.hypot(eta - jet_eta, delta_phi)]


def test_hand_made_event():
    arrays = dijet_inputs(dijets_table(), max_particles=6)
    assert arrays["features"].shape == (3, 6, len(FEATURES))
    assert arrays["features"].dtype == np.float32
    assert arrays["global_features"].shape == (3, len(GLOBAL_FEATURES))
    assert arrays["mask"][0].tolist() == [True] * 4 + [False] * 2
    # jet1's particles (0, 2) fill the first slots, jet2's (1, 4) follow; 3 is dropped.
    assert arrays["jet"][0].tolist() == [1, 1, 2, 2, 0, 0]
    # 20 bins of 49.5 GeV from 10 GeV: 500 GeV is in bin 10, 95 GeV in bin 2.
    assert arrays["mass_class"][0].tolist() == [10, 10, 2, 2, 0, 0]
    features = arrays["features"][0]
    jet1, jet2 = (900.0, 0.0, 3.0, 500.0), (800.0, 0.5, -0.2, 95.0)
    assert features[0] == pytest.approx(expected_features(500.0, 0.1, -3.1, *jet1), abs=1e-5)
    assert features[1] == pytest.approx(expected_features(100.0, -0.2, 2.9, *jet1), abs=1e-5)
    assert features[2] == pytest.approx(expected_features(400.0, 0.6, -0.1, *jet2), abs=1e-5)
    assert features[3] == pytest.approx(expected_features(20.0, 0.3, -0.3, *jet2), abs=1e-5)
    assert (features[4:] == 0).all()
    assert arrays["global_features"][0] == pytest.approx(
        [np.log(500.0), np.log(95.0), 0.3, 0.7], abs=1e-6)
    assert arrays["mjj"].tolist() == [3500.0, 2900.0, 4000.0]
    assert arrays["label"].tolist() == [1, 0, 0]
    assert arrays["label"].dtype == np.int64


def test_delta_phi_is_wrapped_across_pi():
    # The particle and its jet axis sit 0.1 apart, on either side of the +-pi seam.
    across = features_dphi(jet_phi=np.pi - 0.05, part_phi=-np.pi + 0.05)
    back = features_dphi(jet_phi=-np.pi + 0.05, part_phi=np.pi - 0.05)
    assert (across, back) == pytest.approx((0.1, -0.1), abs=1e-5)
    deta, dphi, dr = relative_coordinates(np.zeros(3), np.array([3.0, -3.0, np.pi]),
                                          np.zeros(3), np.array([-3.0, 3.0, -np.pi]))
    assert dphi == pytest.approx([6.0 - 2 * np.pi, 2 * np.pi - 6.0, 0.0])
    assert dr == pytest.approx(np.abs(dphi))
    assert (deta == 0).all()


def features_dphi(jet_phi: float, part_phi: float) -> float:
    table = dijets_table(jet1_phi=[jet_phi, 0.0, 1.0],
                         part_phi=[[part_phi, -0.1, 2.9, 1.5, -0.3], [], [1.0, 1.2]],
                         part_eta=[[0.0, 0.6, -0.2, 3.0, 0.3], [], [1.1, 0.9]],
                         jet1_eta=[0.0, 0.0, 1.0])
    arrays = dijet_inputs(table, max_particles=6)
    assert arrays["jet"][0, 0] == 1
    return float(arrays["features"][0, 0, FEATURES.index("delta_phi")])


def test_empty_events_and_jets_without_particles():
    arrays = dijet_inputs(dijets_table(), max_particles=4)
    assert not arrays["mask"][1].any()
    assert (arrays["features"][1] == 0).all()
    assert arrays["jet"][2].tolist() == [1, 1, 0, 0]
    # An out-of-range mass is clipped: 1500 GeV goes into the last class.
    assert arrays["mass_class"][2].tolist() == [20, 20, 0, 0]
    # log m of a massless jet stays finite.
    assert np.isfinite(arrays["global_features"]).all()
    empty = dijet_inputs(dijets_table(part_pt=[[], [], []], part_eta=[[], [], []],
                                      part_phi=[[], [], []]))
    assert not empty["mask"].any()
    assert len(dijet_inputs(DIJETS.empty_table())["mask"]) == 0


def test_nearest_jet_takes_a_shared_particle():
    # Jets 0.8 apart in eta: a particle at 0.5 is within R = 1 of both, nearer jet2.
    table = dijets_table(jet1_eta=[0.0, 0.0, 1.0], jet1_phi=[0.0, 0.0, 1.0],
                         jet2_eta=[0.8, 0.0, -1.0], jet2_phi=[0.0, 3.0, -2.0],
                         part_eta=[[0.5, 0.3, -0.2, 3.0, 0.4], [], [1.1, 0.9]],
                         part_phi=[[0.0, 0.0, 0.0, 1.5, 0.0], [], [1.0, 1.2]])
    arrays = dijet_inputs(table, max_particles=6)
    # Particles 1 (0.3) and 2 (-0.2) go to jet1, 0 (0.5) to jet2, 4 (0.4, a tie) to jet1.
    assert arrays["jet"][0].tolist() == [1, 1, 1, 2, 0, 0]
    assert np.exp(arrays["features"][0, :4, FEATURES.index("log_pt")]) == pytest.approx(
        [400.0, 100.0, 20.0, 500.0], rel=1e-5)


def crowded_table(rng: np.random.Generator, heavy_count: int, light_count: int,
                  crowded_jet: str) -> pa.Table:
    """One event: `heavy_count` particles around the `crowded_jet` (eta 0, phi 0), and
    `light_count` around the other (eta 0, phi 2.5), all in one pT-ordered list."""
    phi_centre = np.where(np.arange(heavy_count + light_count) < heavy_count, 0.0, 2.5)
    if crowded_jet == "jet2":
        phi_centre = 2.5 - phi_centre
    order = rng.permutation(len(phi_centre))
    pt = np.sort(rng.uniform(1.0, 500.0, len(phi_centre)))[::-1]
    eta = rng.uniform(-0.5, 0.5, len(phi_centre))
    phi = (phi_centre + rng.uniform(-0.5, 0.5, len(phi_centre)))[order]
    return pa.table({
        "jet1_pt": [1000.0], "jet1_eta": [0.0], "jet1_phi": [0.0], "jet1_mass": [400.0],
        "jet1_tau21": [0.4], "jet2_pt": [900.0], "jet2_eta": [0.0], "jet2_phi": [2.5],
        "jet2_mass": [80.0], "jet2_tau21": [0.5], "mjj": [3000.0], "label": [0],
        "part_pt": [pt.tolist()], "part_eta": [eta.tolist()], "part_phi": [phi.tolist()],
    }, schema=DIJETS)


@pytest.mark.parametrize("crowded_jet", ["jet1", "jet2"])
def test_a_crowded_jet_does_not_crowd_out_the_other(crowded_jet):
    table = crowded_table(np.random.default_rng(3), 200, 10, crowded_jet)
    arrays = dijet_inputs(table, max_particles=100)
    crowded, light = (1, 2) if crowded_jet == "jet1" else (2, 1)
    jet = arrays["jet"][0]
    assert arrays["mask"].sum() == 100
    assert (jet == light).sum() == 10
    assert (jet == crowded).sum() == 90
    # The crowded jet keeps its 90 leading particles.
    pt = np.asarray(table["part_pt"][0].as_py(), np.float32)
    phi = np.asarray(table["part_phi"][0].as_py())
    own = pt[np.abs(phi - (0.0 if crowded == 1 else 2.5)) < 1.0]
    kept = np.exp(arrays["features"][0, jet == crowded, FEATURES.index("log_pt")])
    assert np.sort(kept) == pytest.approx(np.sort(own[:90]), rel=1e-5)


def test_shared_budget_rule():
    keep1, keep2 = shared_budget([200, 10, 200, 30, 0], [10, 200, 200, 20, 0], 101)
    assert keep1.tolist() == [91, 10, 51, 30, 0]
    assert keep2.tolist() == [10, 91, 50, 20, 0]


def test_jet_mass_class_bins_and_clipping():
    mass = [0.0, 10.0, 59.4, 59.6, 999.0, 1000.0, 5000.0]
    assert jet_mass_class(mass).tolist() == [1, 1, 1, 2, 20, 20, 20]
    assert NUM_CLASSES == 21


@pytest.mark.parametrize(("column", "value", "message"), [
    ("part_eta", [[0.1, np.nan, -0.2, 3.0, 0.3], [], [1.1, 0.9]], "part_eta"),
    ("jet1_tau21", [0.3, np.nan, 0.6], "jet1_tau21"),
    ("mjj", [3500.0, None, 4000.0], "mjj"),
    ("part_phi", [[-3.1, -0.1, 2.9, 1.5], [], [1.0, 1.2]], "differ in length"),
    ("part_pt", [[500.0, 400.0, 100.0, 50.0, 0.0], [], [300.0, 200.0]], "non-positive"),
])
def test_bad_input_is_refused(column, value, message):
    with pytest.raises(InputError, match=message) as error:
        dijet_inputs(dijets_table(**{column: value}), source="events.parquet")
    assert "events.parquet" in str(error.value)


def test_arrays_feed_a_segmentation_abcnet():
    torch = pytest.importorskip("torch")
    from hepclust.ucluster.abcnet import ABCNet
    from hepclust.ucluster.losses import focal_loss

    arrays = dijet_inputs(dijets_table(), max_particles=6)
    model = ABCNet(in_features=len(FEATURES), num_classes=NUM_CLASSES, k=3, embedding_size=2,
                   global_features=len(GLOBAL_FEATURES), per_particle=True)
    logits, embedding = model(torch.from_numpy(arrays["features"]),
                              torch.from_numpy(arrays["mask"]),
                              torch.from_numpy(arrays["global_features"]))
    assert logits.shape == (3, 6, NUM_CLASSES)
    assert embedding.shape == (3, 2)
    loss = focal_loss(logits, torch.from_numpy(arrays["mass_class"]),
                      mask=torch.from_numpy(arrays["mask"]))
    assert torch.isfinite(loss)
