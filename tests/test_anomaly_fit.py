"""The binned likelihood fits of m_jj spectra (iminuit cost functions), the score scan and
the choice of the fitted range."""

import json
from itertools import pairwise

import numpy as np
import pytest
from scipy.integrate import quad
from scipy.special import expit

from hepclust.anomaly.fit import (
    SQRT_S,
    Binning,
    choose_fit_range,
    dijet_function,
    fit,
    fit_shape,
    score_scan,
    signal_counts,
)

EDGES = np.arange(2000.0, 6001.0, 100.0)
BINNING = Binning(EDGES, 2800.0, 6000.0)
SHAPE = (10.0, 5.0, 0.1)


def spectrum(events: float, shape=SHAPE, binning=BINNING) -> np.ndarray:
    """Expected counts per bin, `events` of them in the fitted range."""
    return events * binning.background(binning.coefficients(shape))


def test_dijet_function_against_hand_computation():
    x = 2600.0 / SQRT_S
    expected = 3.0 * (1 - x) ** 10 / x ** (5 + 0.1 * np.log(x))
    assert dijet_function(2600.0, 3.0, 10.0, 5.0, 0.1) == pytest.approx(expected, rel=1e-12)


def test_bin_probabilities_are_integrals_normalised_over_the_range():
    exact = np.array([quad(lambda m: dijet_function(m, 1.0, *SHAPE), low, high,
                           epsrel=1e-11)[0] for low, high in pairwise(EDGES)])
    probability = BINNING.background(BINNING.coefficients(SHAPE))
    assert probability == pytest.approx(exact / exact[BINNING.mask].sum(), rel=1e-7)
    assert probability[BINNING.mask].sum() == pytest.approx(1.0)
    assert BINNING.mask.sum() == 32
    assert not BINNING.mask[:8].any()
    assert BINNING.shape_of(BINNING.coefficients(SHAPE)) == pytest.approx(SHAPE)
    assert BINNING.signal(3500.0, 150.0)[BINNING.mask].sum() == pytest.approx(1.0)
    assert signal_counts(EDGES, 10.0, 4000.0, 150.0).sum() == pytest.approx(10.0)


@pytest.mark.parametrize(("edges", "message"), [
    (np.array([3000.0, 2000.0, 4000.0]), "increasing"),
    (np.arange(2000.0, 14001.0, 1000.0), "0 < m < 13000"),
    (np.arange(2000.0, 2600.0, 100.0), "at least 6"),
])
def test_bad_binnings_raise(edges, message):
    with pytest.raises(ValueError, match=message):
        Binning(edges)


def test_four_parameter_fit_recovers_the_shape_and_ignores_masked_bins():
    counts = np.random.default_rng(1).poisson(spectrum(100_000)).astype(float)
    result = fit(counts, BINNING)
    assert result.valid, result.message
    assert result.ndf == 32 - 4
    for name, value in zip(("p1", "p2", "p3"), SHAPE, strict=True):
        assert abs(result.parameters[name] - value) < 3 * result.errors[name], name
    assert result.parameters["yield"] == pytest.approx(counts[BINNING.mask].sum(), rel=1e-4)
    assert result.gof_p > 0.01
    # The bins below the fitted range are masked: any content there changes nothing.
    changed = counts.copy()
    changed[:8] = 1e4
    assert fit(changed, BINNING).fval == pytest.approx(result.fval, abs=1e-6)
    as_json = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert set(as_json["parameters"]) == {"yield", "p0", "p1", "p2", "p3"}


def test_three_parameter_and_frozen_fits():
    counts = np.random.default_rng(2).poisson(spectrum(5000)).astype(float)
    three = fit(counts, BINNING, order=2)
    assert three.valid
    assert three.parameters["p3"] == pytest.approx(0.0, abs=1e-9)
    assert three.errors["p3"] is None
    frozen = fit(counts, BINNING, frozen=BINNING.coefficients(SHAPE))
    assert frozen.valid
    assert frozen.shape == pytest.approx(SHAPE)
    assert frozen.ndf == 31
    assert frozen.parameters["yield"] == pytest.approx(counts[BINNING.mask].sum(), rel=1e-4)


def test_joint_transfer_fit_finds_the_slope_between_neighbours():
    rng = np.random.default_rng(3)
    cluster_truth = 20_000 * BINNING.background(BINNING.coefficients(SHAPE), (0.4, 0.0))
    counts = rng.poisson(cluster_truth).astype(float)
    neighbour = rng.poisson(spectrum(40_000)).astype(float)
    free = fit(counts, BINNING, neighbour=neighbour)
    assert free.valid, free.message
    assert abs(free.parameters["b1"] - 0.4) < 3 * free.errors["b1"]
    # A tight constraint pulls b1 to 0 and the fit gets worse.
    tight = fit(counts, BINNING, neighbour=neighbour, transfer_widths=(1e-3, 1e-3))
    assert abs(tight.parameters["b1"]) < 0.01
    assert tight.fval > free.fval + 20


def test_score_scan_matches_the_likelihood_ratio_and_finds_a_bump():
    rng = np.random.default_rng(4)
    counts = rng.poisson(spectrum(10_000) + 250 * BINNING.signal(4000.0, 150.0)).astype(float)
    masses = np.arange(3000.0, 5801.0, 100.0)
    templates = np.array([BINNING.signal(mass, 150.0) for mass in masses])
    background = fit(counts, BINNING)
    z = score_scan(background, counts, BINNING, templates)
    best = int(np.argmax(z))
    assert abs(masses[best] - 4000.0) <= 100.0
    with_signal = fit(counts, BINNING, template=templates[best], start=background)
    q0 = background.fval - with_signal.fval
    assert with_signal.parameters["signal"] > 100
    assert z[best] ** 2 == pytest.approx(q0, rel=0.3)


@pytest.mark.parametrize("min_p", [0.05, 0.01])  # the function's default, the config's
def test_fit_range_starts_above_the_trigger_turn_on(min_p):
    """A spectrum whose efficiency rises from 50% at 2.8 TeV (80 GeV wide): the start is
    where the efficiency has reached the plateau, not the histogram's highest bin; the
    config's looser threshold still rejects every start on the turn-on."""
    rng = np.random.default_rng(5)
    fine = np.linspace(1500.0, 7000.0, 100_001)
    weights = dijet_function(fine, 1.0, *SHAPE) * expit((fine - 2800.0) / 80.0)
    mjj = rng.choice(fine, size=30_000, p=weights / weights.sum())
    result = choose_fit_range(mjj, EDGES, 6000.0, min_p=min_p)
    assert result["peak"] <= 2900.0
    assert 3000.0 <= result["low"] <= 3200.0
    assert all(c["gap_p"] < min_p for c in result["candidates"] if c["low"] < 3000.0)
    # Without a turn-on the highest bin is already good.
    plain = rng.choice(fine, size=30_000, p=dijet_function(fine, 1.0, *SHAPE) / dijet_function(
        fine, 1.0, *SHAPE).sum())
    assert choose_fit_range(plain, EDGES, 6000.0)["low"] <= 2100.0


def test_shape_fit_is_multinomial():
    counts = np.random.default_rng(6).poisson(spectrum(50_000)).astype(float)
    result = fit_shape(counts, BINNING)
    assert result.valid
    assert result.shape == pytest.approx(fit(counts, BINNING).shape, rel=1e-3, abs=1e-2)
    assert result.ndf == 32 - 1 - 3
