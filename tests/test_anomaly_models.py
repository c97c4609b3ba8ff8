"""The background models, the mass scan and the trials factor, checked on toys drawn from
the dijet function: without signal each model's global p-values must be uniform (about 5%
below 0.05), and a Gaussian bump must be found at its mass."""

import math
from dataclasses import replace

import numpy as np
import pytest

from hepclust.anomaly.calibration import Truth, calibrate, fraction_below
from hepclust.anomaly.models import (
    ScanSettings,
    background_fit,
    global_p,
    local_p,
    scan,
    score_q,
    sidak,
    transfer_widths,
    upcrossings,
)

# 200 GeV bins keep the toys fast; the scan steps by a signal width.
SETTINGS = ScanSettings.build(np.arange(2400.0, 6001.0, 200.0), 2800.0, 6000.0, width=200.0,
                              mass_step=200.0, trials_toys=20)
BINNING = SETTINGS.binning
SHAPE = (10.0, 5.0, 0.1)


def spectrum(events, shape=SHAPE, transfer=(0.0, 0.0)):
    return events * BINNING.background(BINNING.coefficients(shape), transfer)


def truths(neighbour_shift=0.0):
    """Four pairs from 800 to 6000 events; the neighbour has twice the events, and its p1
    differs by `neighbour_shift`."""
    shifted = (SHAPE[0] + neighbour_shift, *SHAPE[1:])
    return [Truth(spectrum(events), spectrum(2 * events, shifted), (0.05, 0.05))
            for events in (800, 1500, 3000, 6000)]


@pytest.mark.parametrize("model", ["own", "transfer"])
def test_each_model_is_calibrated_on_dijet_toys(model):
    result = calibrate(model, truths(), SETTINGS, toys=200, seed=1)
    fraction = result["global_p"]["fraction"]
    assert result["failed"] <= 4
    assert result["global_p"]["toys"] >= 196
    # Binomial error at 200 toys: 0.015.
    assert 0.01 <= fraction <= 0.10, fraction
    # The local p-value at the best mass ignores the look-elsewhere effect: far too many.
    assert result["local_p"]["fraction"] > 0.2


def test_a_frozen_shape_ignores_the_neighbours_statistical_error():
    """Even where the neighbour's true shape is the cluster's, the frozen model takes its
    fitted shape as exact: too many background-only toys fall below 0.05."""
    result = calibrate("frozen", truths(), SETTINGS, toys=200, seed=1)
    assert result["global_p"]["toys"] >= 196
    assert result["global_p"]["fraction"] > 0.08, result["global_p"]


def test_q0_is_the_likelihood_ratio_or_the_score():
    """With ``score``, q0 is max(z, 0)^2 on the grid, the process whose upcrossings the
    trials toys count (Gross and Vitells' formula holds for its maximum); the default is
    the likelihood ratio at the best mass. Both are reported."""
    rng = np.random.default_rng(5)
    counts = rng.poisson(spectrum(3000) + 120 * BINNING.signal(4400.0, 200.0)).astype(float)
    by_score = replace(SETTINGS, statistic="score")
    result = scan("own", counts, None, by_score)
    q = score_q(result["background"], counts, by_score)
    assert result["q0"] == pytest.approx(q.max())
    assert result["q0_score"] == pytest.approx(q.max())
    assert result["mass"] == SETTINGS.masses[int(np.argmax(q))]
    assert result["local_p"] == pytest.approx(local_p(q.max()))
    assert result["q0_likelihood_ratio"] == pytest.approx(result["q0"], rel=0.3)
    # Toys skip the signal fit: the score's p-value needs only the background-only fit.
    quick = scan("own", counts, None, by_score, errors=False)
    assert quick["signal_fit"] is None
    assert quick["q0"] == pytest.approx(result["q0"], rel=1e-3)
    ratio = scan("own", counts, None, SETTINGS)
    assert ratio["q0"] == pytest.approx(ratio["q0_likelihood_ratio"])
    assert ratio["q0"] == pytest.approx(result["q0_likelihood_ratio"], rel=0.05)
    assert ratio["q0_score"] == pytest.approx(q.max(), rel=1e-3)
    with pytest.raises(ValueError, match="unknown test statistic"):
        ScanSettings.build(np.arange(2400.0, 6001.0, 200.0), 2800.0, 6000.0, width=200.0,
                           mass_step=200.0, trials_toys=20, statistic="deviance")


def test_background_models_need_their_inputs():
    counts = spectrum(1000)
    with pytest.raises(ValueError, match="unknown background model"):
        background_fit("neighbour", counts, counts, BINNING)
    with pytest.raises(ValueError, match="nearest cluster's histogram"):
        background_fit("frozen", counts, None, BINNING)
    with pytest.raises(ValueError, match="constraint widths"):
        background_fit("transfer", counts, counts, BINNING)


def test_upcrossings_and_global_p_by_hand():
    assert upcrossings(np.array([0.0, 2.0, 0.5, 3.0, 4.0, 0.0]), 1.0) == 2
    assert upcrossings(np.array([2.0, 2.0, 0.0]), 1.0) == 0  # starting above is no crossing
    q0, n0 = 16.0, 1.5
    expected = 0.5 * math.erfc(4.0 / math.sqrt(2)) + n0 * math.exp(-(q0 - 1.0) / 2)
    assert global_p(q0, n0, 1.0) == pytest.approx(expected)
    assert global_p(q0, n0, 1.0) > local_p(q0)
    assert global_p(0.5, n0, 1.0) == 1.0
    assert global_p(q0, None, 1.0) is None
    assert local_p(0.0) == 0.5


def test_sidak_by_hand():
    assert sidak(0.01, 10) == pytest.approx(1 - 0.99 ** 10)
    assert sidak(1e-12, 30) == pytest.approx(30e-12, rel=1e-6)  # no round-off to 0
    assert sidak(0.3, 1) == pytest.approx(0.3)
    assert sidak(1.0, 5) == pytest.approx(1.0)
    assert sidak(None, 3) is None


def test_transfer_widths_measure_the_spread_over_pairs():
    rng = np.random.default_rng(4)
    slopes = rng.normal(0.0, 0.3, 12)
    pairs = [(rng.poisson(spectrum(40_000, transfer=(b, 0.0))).astype(float),
              rng.poisson(spectrum(40_000)).astype(float)) for b in slopes]
    result = transfer_widths(pairs, BINNING)
    assert result["pairs"] == 12
    assert 0.12 < result["widths"][0] < 0.6
    assert result["widths"][1] < 0.15
    same = transfer_widths([(rng.poisson(spectrum(40_000)).astype(float),
                             rng.poisson(spectrum(40_000)).astype(float)) for _ in range(8)],
                           BINNING)
    assert max(same["widths"]) < 0.08


def test_fraction_below_has_a_binomial_error():
    result = fraction_below([0.01, 0.2, 0.5, 0.04, None])
    assert result == {"fraction": 0.5, "error": pytest.approx(0.25), "toys": 4}
    assert fraction_below([])["fraction"] is None
