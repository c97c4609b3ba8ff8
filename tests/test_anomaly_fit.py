import json
from itertools import pairwise

import numpy as np
import pytest
from scipy.integrate import quad

from hepclust.anomaly import fit
from hepclust.anomaly.fit import (
    SQRT_S,
    background_counts,
    dijet_function,
    expected_counts,
    fit_background,
    fit_normalisation,
    fit_with_signal,
    local_p_value,
    signal_counts,
)

# A steeply falling QCD-like spectrum from 1.5 to 6 TeV; the W' signal at 3.5 TeV.
EDGES = np.arange(1500.0, 6001.0, 100.0)
SHAPE = (10.0, 5.0, 0.1)
SIGNAL_MASS, SIGNAL_WIDTH = 3500.0, 175.0


def spectrum(events: float, shape=SHAPE) -> np.ndarray:
    """Expected counts per bin of `events` events of the dijet function."""
    unit = background_counts(EDGES, 1.0, *shape)
    return events * unit / unit.sum()


def p0_for(events: float, shape=SHAPE) -> float:
    return events / background_counts(EDGES, 1.0, *shape).sum()


def test_dijet_function_against_hand_computation():
    x = 2600.0 / SQRT_S
    expected = 3.0 * (1 - x) ** 10 / x ** (5 + 0.1 * np.log(x))
    assert dijet_function(2600.0, 3.0, 10.0, 5.0, 0.1) == pytest.approx(expected, rel=1e-12)
    # The spectrum falls steeply: orders of magnitude between 1.5 and 6 TeV.
    assert dijet_function(6000.0, 1, *SHAPE) / dijet_function(1500.0, 1, *SHAPE) < 1e-4


def test_bin_integrals():
    edges = np.array([1500.0, 1600.0, 2500.0, 6000.0])
    exact = [quad(lambda m: dijet_function(m, 2.0, *SHAPE), low, high, epsrel=1e-10)[0]
             for low, high in pairwise(edges)]
    assert background_counts(edges, 2.0, *SHAPE) == pytest.approx(exact, rel=1e-8)
    assert signal_counts(EDGES, 250.0, SIGNAL_MASS, SIGNAL_WIDTH).sum() == pytest.approx(250.0)
    both = expected_counts(EDGES, {"p0": 2.0, "p1": 10.0, "p2": 5.0, "p3": 0.1,
                                   "signal_yield": 250.0, "mass": 3500.0, "width": 175.0})
    assert both.sum() == pytest.approx(background_counts(EDGES, 2.0, *SHAPE).sum() + 250.0)


def test_background_fit_recovers_the_parameters():
    counts = np.random.default_rng(1).poisson(spectrum(100_000))
    assert (counts == 0).any()  # the empty tail bins take part
    result = fit_background(counts, EDGES)
    assert result.valid, result.message
    assert result.message == "converged"
    truth = {"p0": p0_for(100_000), "p1": SHAPE[0], "p2": SHAPE[1], "p3": SHAPE[2]}
    for name, value in truth.items():
        assert abs(result.parameters[name] - value) < 3 * result.errors[name], name
    assert result.ndf == len(EDGES) - 1 - 4
    assert 0.3 < result.chi2_ndf < 2.0
    assert expected_counts(EDGES, result.parameters).sum() == pytest.approx(counts.sum(),
                                                                            rel=1e-3)
    as_json = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert as_json["valid"] is True
    assert set(as_json["parameters"]) == {"p0", "p1", "p2", "p3"}


def test_normalisation_refit_keeps_the_shape():
    counts = np.random.default_rng(2).poisson(spectrum(20_000))
    result = fit_normalisation(counts, EDGES, SHAPE)
    assert result.valid, result.message
    assert result.shape == SHAPE
    assert [result.errors[name] for name in ("p1", "p2", "p3")] == [None] * 3
    assert abs(result.parameters["p0"] - p0_for(20_000)) < 3 * result.errors["p0"]
    # The maximum-likelihood p0 of a fixed shape matches the observed total.
    assert expected_counts(EDGES, result.parameters).sum() == pytest.approx(counts.sum(),
                                                                            rel=1e-3)
    assert result.ndf == len(EDGES) - 1 - 1


def test_injected_bump_is_found():
    rng = np.random.default_rng(3)
    neighbour = fit_background(rng.poisson(spectrum(200_000)), EDGES)
    counts = rng.poisson(spectrum(30_000)
                         + signal_counts(EDGES, 300.0, SIGNAL_MASS, SIGNAL_WIDTH))
    test = local_p_value(counts, EDGES, neighbour.shape, SIGNAL_MASS, SIGNAL_WIDTH)
    assert test.valid
    assert test.p_value < 1e-6
    assert test.significance == pytest.approx(np.sqrt(test.q0))
    signal_yield = test.signal.parameters["signal_yield"]
    assert abs(signal_yield - 300.0) < 3 * test.signal.errors["signal_yield"]
    assert test.signal.errors["mass"] is None

    free = fit_with_signal(counts, EDGES, neighbour.shape, 3300.0, 250.0, free_mass=True,
                           free_width=True)
    assert free.valid, free.message
    assert abs(free.parameters["mass"] - SIGNAL_MASS) < 100.0
    json.dumps(test.to_dict(), allow_nan=False)


def test_background_only_toys_give_no_small_p_values():
    rng = np.random.default_rng(7)
    neighbour = fit_background(rng.poisson(spectrum(200_000)), EDGES)
    p_values = [local_p_value(rng.poisson(spectrum(30_000)), EDGES, neighbour.shape,
                              SIGNAL_MASS, SIGNAL_WIDTH).p_value for _ in range(8)]
    assert all(0 < p <= 0.5 for p in p_values)
    assert sum(p < 0.05 for p in p_values) <= 1
    # No preferred signal gives exactly 0.5: the one-sided test.
    assert 0.5 in p_values


def test_empty_histogram_is_reported_not_raised():
    zeros = np.zeros(len(EDGES) - 1)
    result = fit_background(zeros, EDGES)
    assert not result.valid
    assert "no events" in result.message
    assert result.to_dict()["parameters"]["p0"] is None
    test = local_p_value(zeros, EDGES, SHAPE, SIGNAL_MASS, SIGNAL_WIDTH)
    assert not test.valid
    assert json.loads(json.dumps(test.to_dict(), allow_nan=False))["p_value"] is None


def test_failed_fit_is_flagged(monkeypatch):
    migrad = fit.Minuit.migrad
    monkeypatch.setattr(fit.Minuit, "migrad", lambda self: migrad(self, ncall=5))
    result = fit_background(np.random.default_rng(4).poisson(spectrum(10_000)), EDGES)
    assert not result.valid
    assert result.message != "converged"
    assert result.to_dict()["valid"] is False


def test_sparse_histogram_with_zero_bins():
    counts = np.random.default_rng(5).poisson(spectrum(300))
    assert (counts == 0).sum() > 10
    result = fit_normalisation(counts, EDGES, SHAPE)
    assert result.valid, result.message
    assert np.isfinite(result.fval)


@pytest.mark.parametrize(("counts", "edges", "message"), [
    (np.ones(3), np.array([1500.0, 2000.0, 2500.0]), "one count per bin"),
    (np.array([1.0, -1.0]), np.array([1500.0, 2000.0, 2500.0]), "non-negative"),
    (np.ones(2), np.array([1500.0, 2000.0, 14000.0]), "0 < m"),
    (np.ones(2), np.array([2500.0, 2000.0, 3000.0]), "increasing"),
])
def test_bad_histograms_raise(counts, edges, message):
    with pytest.raises(ValueError, match=message):
        fit_background(counts, edges)


def test_signal_outside_the_range_raises():
    with pytest.raises(ValueError, match="mass inside"):
        fit_with_signal(np.ones(len(EDGES) - 1), EDGES, SHAPE, 7000.0, 100.0)


def test_free_width_without_signal_is_still_a_valid_fit():
    # At zero yield the width is undetermined; the fit falls back to the given width.
    rng = np.random.default_rng(11)
    tests = [local_p_value(rng.poisson(spectrum(30_000)), EDGES, SHAPE, SIGNAL_MASS,
                           SIGNAL_WIDTH, free_width=True) for _ in range(10)]
    assert all(test.valid for test in tests)
    fallen_back = [test for test in tests if "no signal preferred" in test.signal.message]
    assert fallen_back
    assert all(test.signal.parameters["width"] == SIGNAL_WIDTH for test in fallen_back)
    assert all(test.p_value == pytest.approx(0.5, abs=0.01) for test in fallen_back)


def test_the_three_parameter_function_keeps_p3_fixed():
    edges = np.linspace(2800, 6000, 33)
    expected = background_counts(edges, 1.0, 10.0, 5.0, 0.0)
    counts = np.round(expected / expected.sum() * 5000)
    fit = fit_background(counts, edges, p3=0.0)
    assert fit.valid, fit.message
    assert fit.parameters["p3"] == 0.0
    assert fit.errors["p3"] is None
    assert fit.ndf == len(counts) - 3
    assert (fit.parameters["p1"], fit.parameters["p2"]) == pytest.approx((10.0, 5.0), rel=0.1)


def test_refitting_the_slope_absorbs_a_neighbour_with_another_shape():
    # The cluster falls less steeply than its neighbour: with the neighbour's whole shape
    # frozen, a background-only cluster looks like a signal; with p1 refitted it does not.
    rng = np.random.default_rng(11)
    neighbour = fit_background(rng.poisson(spectrum(200_000)), EDGES)
    counts = rng.poisson(spectrum(30_000, shape=(8.0, 5.0, 0.1)))
    frozen_shape = local_p_value(counts, EDGES, neighbour.shape, 2500.0, SIGNAL_WIDTH)
    refitted = local_p_value(counts, EDGES, neighbour.shape, 2500.0, SIGNAL_WIDTH,
                             refit=("p1",))
    assert frozen_shape.p_value < 1e-3
    assert refitted.p_value > 0.05
    assert refitted.background.errors["p1"] is not None
    assert frozen_shape.background.errors["p1"] is None


def test_only_shape_parameters_can_be_refitted():
    with pytest.raises(ValueError, match="p0"):
        fit_normalisation(np.ones(len(EDGES) - 1), EDGES, SHAPE, refit=("p0",))
