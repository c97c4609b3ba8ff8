"""TrackML-like collisions from Pythia 8: pile-up vertices, spectrum, secondaries."""

import numpy as np
import pytest

from hepclust.generate.collisions import CollisionGenerator, CollisionSettings

SETTINGS = CollisionSettings(hard_process="none", pileup=60)


@pytest.fixture(scope="module")
def generator():
    return CollisionGenerator(SETTINGS)


@pytest.fixture(scope="module")
def event(generator):
    return generator.event(seed=7, density=1.0, rng=np.random.default_rng(7))


def test_vertices_follow_the_beam_spot(event):
    primary = event["secondary"] == 0
    vertex_z = {v: z for v, z in zip(event["vertex"][primary], event["vz"][primary],
                                     strict=True)}
    # Diffractive interactions may leave nothing in the acceptance.
    assert 0.8 * SETTINGS.pileup <= len(vertex_z) <= SETTINGS.pileup
    assert np.std(list(vertex_z.values())) == pytest.approx(SETTINGS.sigma_z_mm, rel=0.3)
    radius = np.hypot(event["vx"][primary], event["vy"][primary])
    assert radius.max() < 6 * SETTINGS.sigma_xy_mm


def test_particles_are_charged_or_photons_within_the_acceptance(event):
    pt = np.hypot(event["px"], event["py"])
    assert pt.min() > SETTINGS.pt_min
    assert np.abs(np.arcsinh(event["pz"] / pt)).max() < SETTINGS.eta_max
    charged = event["q"] != 0
    assert set(np.unique(event["pdg"][~charged])) == {22}
    # Minimum bias: about 50 charged particles above 150 MeV per interaction, a soft
    # spectrum with roughly one in ten above 1 GeV.
    assert 25 * SETTINGS.pileup < charged.sum() < 90 * SETTINGS.pileup
    assert 0.05 < np.mean(pt[charged] > 1.0) < 0.25


def test_decays_give_displaced_secondaries(event):
    displaced = np.hypot(event["vx"], event["vy"]) > 1.0
    charged = event["q"] != 0
    assert 0.03 < np.mean(displaced[charged]) < 0.25  # K0S, Lambda, hyperons
    assert (event["secondary"][displaced] > 0).all()


def test_density_keeps_a_random_fraction_and_events_repeat(generator, event):
    again = generator.event(seed=7, density=1.0, rng=np.random.default_rng(7))
    np.testing.assert_array_equal(again["px"], event["px"])
    tenth = generator.event(seed=7, density=0.1, rng=np.random.default_rng(7))
    assert len(tenth["px"]) == pytest.approx(0.1 * len(event["px"]), rel=0.25)
    other = generator.event(seed=8, density=1.0, rng=np.random.default_rng(7))
    assert len(other["px"]) != len(event["px"]) or not np.array_equal(other["px"], event["px"])
