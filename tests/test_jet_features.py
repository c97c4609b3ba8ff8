import awkward as ak
import numpy as np
import pytest

from hepclust.features.dijets import dijet_table
from hepclust.features.jets import cluster_jets, constituents_of, nsubjettiness, tau21
from hepclust.features.kinematics import cartesian, momentum_records


def particles(pt, eta, phi):
    """Massless particles of one jet or event as (particle,) awkward records."""
    return momentum_records(*cartesian(np.asarray(pt, float), np.asarray(eta, float),
                                       np.asarray(phi, float)))


def test_cluster_jets_orders_by_pt_and_indexes_constituents():
    event = particles([50, 10, 300, 20], [0.0, 0.1, 2.0, 2.2], [0.0, 0.1, 3.0, 3.1])
    jets, index = cluster_jets(ak.Array([event]), radius=0.8)
    pt = np.hypot(jets.px, jets.py)[0].to_list()
    assert pt == pytest.approx([320, 60], rel=1e-3)
    assert sorted(index[0][0].to_list()) == [2, 3]
    assert sorted(index[0][1].to_list()) == [0, 1]


def test_constituents_of_gathers_across_events():
    events = ak.Array([particles([5, 7], [0, 3], [0, 0]), particles([9], [1], [1])])
    index = ak.Array([[[1], [0]], [[0]]])
    gathered = constituents_of(events, index)
    assert ak.num(gathered, axis=1).to_list() == [1, 1, 1]
    assert np.hypot(gathered.px, gathered.py)[:, 0].to_list() == pytest.approx([7, 5, 9])


def test_nsubjettiness_of_a_two_particle_jet():
    # Two equal prongs 0.4 apart: each is 0.2 from the one-axis centre, 0 from its own axis.
    jet = ak.Array([particles([100, 100], [0.2, -0.2], [0.0, 0.0])])
    assert nsubjettiness(jet, 1, radius=1.0)[0] == pytest.approx(0.2, rel=1e-3)
    assert nsubjettiness(jet, 2, radius=1.0)[0] == pytest.approx(0.0, abs=1e-9)


def test_tau21_separates_two_prongs_from_one():
    rng = np.random.default_rng(1)
    soft = dict(pt=rng.exponential(2, 30), eta=rng.normal(0, 0.3, 30), phi=rng.normal(0, 0.3, 30))
    one = particles(np.r_[500, soft["pt"]], np.r_[0, soft["eta"]], np.r_[0, soft["phi"]])
    two = particles(np.r_[250, 250, soft["pt"]], np.r_[0.25, -0.25, soft["eta"]],
                    np.r_[0, 0, soft["phi"]])
    one_prong, two_prong = tau21(ak.Array([one, two]), radius=1.0)
    assert two_prong < 0.3 < one_prong


def test_single_particle_jet_has_zero_tau21():
    assert tau21(ak.Array([particles([100], [0], [0])]), radius=1.0).tolist() == [0.0]


def test_dijet_table_orders_jets_by_mass_and_computes_mjj():
    # A light jet (one particle) and a heavier two-prong jet, back to back at eta = 0.
    event = {"pt": [1000.0, 400.0, 400.0, 5.0], "eta": [0.0, 0.2, -0.2, 3.5],
             "phi": [0.0, np.pi, np.pi, 1.0]}
    lonely = {"pt": [1000.0], "eta": [0.0], "phi": [0.0]}
    table = dijet_table(ak.Array([event, lonely]), np.array([1, 0]), radius=1.0)
    assert table.num_rows == 1  # the one-jet event is dropped
    row = table.to_pylist()[0]
    assert row["label"] == 1
    assert row["jet1_pt"] == pytest.approx(800, rel=1e-3)
    assert row["jet1_mass"] > row["jet2_mass"] == pytest.approx(0.0, abs=1e-3)
    assert row["jet1_tau21"] == pytest.approx(0.0, abs=1e-6)
    energy, px = 1000.0 + 2 * 400 * np.cosh(0.2), 1000.0 - 800.0
    assert row["mjj"] == pytest.approx(np.sqrt(energy**2 - px**2), rel=1e-4)
    assert row["part_pt"] == [1000.0, 400.0, 400.0, 5.0]


def test_dijet_table_truncates_particles_keeping_the_hardest():
    pt = np.r_[900.0, 800.0, np.linspace(1, 10, 20)]
    event = {"pt": pt, "eta": np.r_[0.0, 0.0, np.zeros(20)],
             "phi": np.r_[0.0, np.pi, np.full(20, 1.5)]}
    table = dijet_table(ak.Array([event]), np.array([0]), max_particles=5)
    assert table.column("part_pt").to_pylist()[0] == pytest.approx([900, 800, 10, 9.526316,
                                                                      9.052631], rel=1e-5)
