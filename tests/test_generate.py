"""Physics sanity of the generators on small samples (a few seconds each)."""

import numpy as np
import pytest

from hepclust.generate.boosted_jets import generate_boosted_jets
from hepclust.generate.dijets import generate_dijets
from hepclust.generate.pythia import shard_seed
from hepclust.io.schema import DIJETS, JET_LABELS, JETS

JET_WINDOW = dict(pthat_min=750, pthat_max=1250, progress=False)


@pytest.fixture(scope="module")
def jets():
    return {p: generate_boosted_jets(p, 60, seed=11, **JET_WINDOW)[0] for p in ("W", "Z", "top")}


@pytest.mark.parametrize(("process", "low", "high"), [("W", 70, 92), ("Z", 82, 102),
                                                      ("top", 160, 190)])
def test_jet_mass_peaks_where_the_particle_is(jets, process, low, high):
    mass = jets[process].column("jet_mass").to_numpy()
    assert low < np.median(mass) < high


def test_jets_pass_the_selection_and_carry_their_label(jets):
    for process, table in jets.items():
        assert table.schema.equals(JETS)
        assert table.num_rows == 60
        pt = table.column("jet_pt").to_numpy()
        assert ((pt > 800) & (pt < 1200)).all()
        assert set(table.column("label").to_pylist()) == {JET_LABELS[process]}
        # Most decays at 1 TeV are contained in R = 0.8; top less often than W and Z.
        assert table.column("contained").to_numpy().mean() > 0.6


def test_constituents_are_sorted_truncated_and_sum_to_the_jet(jets):
    table = jets["top"]
    for row in table.slice(0, 10).to_pylist():
        pt = np.array(row["part_pt"])
        assert len(pt) <= 100
        assert (np.diff(pt) <= 0).all()
        if row["n_constituents"] <= 100:
            assert pt.sum() == pytest.approx(row["jet_pt"], rel=0.1)
        assert set(np.abs(row["part_charge"])) <= {0, 1, 2}


def test_same_seed_same_jets():
    first, _ = generate_boosted_jets("W", 5, seed=3, **JET_WINDOW)
    again, _ = generate_boosted_jets("W", 5, seed=3, **JET_WINDOW)
    other, _ = generate_boosted_jets("W", 5, seed=4, **JET_WINDOW)
    assert first.equals(again)
    assert not first.equals(other)


def test_shard_seeds_differ_per_shard_and_stay_in_pythia_range():
    seeds = {shard_seed(1, "jets", "W", shard) for shard in range(100)}
    assert len(seeds) == 100
    assert all(1 <= s <= 900_000_000 for s in seeds)
    assert shard_seed(1, "jets", "W", 0) == shard_seed(1, "jets", "W", 0)


@pytest.fixture(scope="module")
def dijets():
    return {p: generate_dijets(p, 40, seed=5, progress=False) for p in ("qcd", "signal")}


def test_signal_is_a_3p5_tev_resonance_of_500_and_100_gev_jets(dijets):
    table, stats = dijets["signal"]
    assert table.schema.equals(DIJETS)
    assert set(table.column("label").to_pylist()) == {1}
    assert np.median(table.column("mjj").to_numpy()) == pytest.approx(3500, rel=0.08)
    assert np.median(table.column("jet1_mass").to_numpy()) == pytest.approx(500, rel=0.15)
    assert np.median(table.column("jet2_mass").to_numpy()) == pytest.approx(100, rel=0.3)
    assert stats.selected == 40


def test_every_event_has_a_jet_above_1p3_tev(dijets):
    for table, _ in dijets.values():
        leading = np.maximum(table.column("jet1_pt").to_numpy(),
                             table.column("jet2_pt").to_numpy())
        assert (leading > 1300).all()
        assert (table.column("jet1_mass").to_numpy()
                >= table.column("jet2_mass").to_numpy()).all()
        assert max(len(p) for p in table.column("part_pt").to_pylist()) <= 700


def test_signal_jets_are_more_two_pronged_than_qcd(dijets):
    tau = {p: np.median(t.column("jet1_tau21").to_numpy()) for p, (t, _) in dijets.items()}
    assert tau["signal"] < tau["qcd"]
    background = dijets["qcd"][0]
    assert set(background.column("label").to_pylist()) == {0}
