r"""Binned Poisson fits of dijet mass spectra: the background estimate of UCluster's anomaly
search (PRD 103, 092007, Sec. VI.A, Eq. (5) and Fig. 9).

The background is the four-parameter dijet function

.. math:: \frac{dN}{dm_{jj}} = p_0 \frac{(1 - x)^{p_1}}{x^{p_2 + p_3 \ln x}},
          \qquad x = m_{jj} / \sqrt{s},

with :math:`\sqrt{s}` = 13 TeV (`SQRT_S`), the form of the dijet searches the paper cites
(CDF, ATLAS, CMS). The paper prints "x = m_jj / 1 TeV", which cannot be meant: the
(1 - x) factor would vanish at 1 TeV, below the spectrum. The signal is a Gaussian.

The search: fit the shape on the cluster nearest the one under study (`fit_background`),
freeze p1..p3 and refit the normalisation on the studied cluster (`fit_normalisation`), then
add a Gaussian of non-negative yield (`fit_with_signal`); `local_p_value` turns the
likelihood ratio of the two into the background-only local p-value.

Every fit minimises the Poisson deviance (Baker-Cousins likelihood chi2),
:math:`2 \sum_i [\mu_i - n_i + n_i \ln(n_i / \mu_i)]`, with iminuit; empty bins count (they
add :math:`2 \mu_i`). Expected counts are bin integrals (Gauss-Legendre in ln m inside each
bin for the dijet function, normal CDF differences for the Gaussian). Internally the
background yield in the histogram stands in for p0 (p0 swings by orders of magnitude with
the shape; the yield does not), and p0 and its error are derived from it. A fit that does
not converge is returned with ``valid`` False and the reasons in ``message``; nothing is
raised for it.
"""

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from iminuit import Minuit
from scipy.special import ndtr, xlogy
from scipy.stats import chi2 as chi2_distribution

SQRT_S = 13_000.0  # GeV, the LHC collision energy of the LHC Olympics samples
SHAPE = ("p1", "p2", "p3")
BACKGROUND = ("p0", *SHAPE)
SIGNAL = ("signal_yield", "mass", "width")
DEFAULT_SHAPE = (10.0, 5.0, 0.0)  # a start when the data cannot give one
GAUSS_POINTS = 8  # Gauss-Legendre nodes per bin
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(GAUSS_POINTS)
_HUGE = 1e30  # the deviance returned where a trial parameter makes the model meaningless
_YIELD = "background_yield"  # the fit's internal stand-in for p0


def dijet_function(mjj, p0: float, p1: float, p2: float, p3: float,
                   sqrt_s: float = SQRT_S) -> np.ndarray:
    """dN/dm of Eq. (5) at masses `mjj` (GeV, 0 < mjj < sqrt_s)."""
    x = np.asarray(mjj, np.float64) / sqrt_s
    log_x = np.log(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return p0 * np.exp(p1 * np.log1p(-x) - (p2 + p3 * log_x) * log_x)


def background_counts(edges, p0: float, p1: float, p2: float, p3: float) -> np.ndarray:
    """The integral of the dijet function over each bin of `edges`: Gauss-Legendre in
    u = ln m, where the nearly power-law integrand m dN/dm is smooth (relative error below
    1e-11 even for one bin from 1.5 to 6 TeV)."""
    log_edges = np.log(np.asarray(edges, np.float64))
    centre, half = (log_edges[1:] + log_edges[:-1]) / 2, np.diff(log_edges) / 2
    mass = np.exp(centre[:, None] + half[:, None] * _NODES)
    return half * ((dijet_function(mass, p0, p1, p2, p3) * mass) @ _WEIGHTS)


def signal_counts(edges, signal_yield: float, mass: float, width: float) -> np.ndarray:
    """The share of a Gaussian of `signal_yield` events in each bin of `edges`."""
    cdf = ndtr((np.asarray(edges, np.float64) - mass) / width)
    return signal_yield * np.diff(cdf)


def expected_counts(edges, parameters: Mapping[str, float]) -> np.ndarray:
    """Background, plus the Gaussian if `parameters` has a signal_yield: the model of a
    `FitResult`'s parameters, e.g. for a plot."""
    counts = background_counts(edges, *(parameters[name] for name in BACKGROUND))
    if "signal_yield" in parameters:
        counts = counts + signal_counts(edges, *(parameters[name] for name in SIGNAL))
    return counts


def poisson_deviance(counts: np.ndarray, expected: np.ndarray) -> float:
    """2 sum(mu - n + n ln(n / mu)): 0 for a perfect model, zero-count bins allowed."""
    return float(2 * np.sum(expected - counts + xlogy(counts, counts) - xlogy(counts, expected)))


@dataclass(frozen=True)
class FitResult:
    """One fit: the parameters and their HESSE errors (None for a fixed parameter),
    ``valid`` with the reasons in ``message`` when False, ``fval`` the minimised deviance,
    and Pearson's chi2 (expected counts as variances) over ``ndf`` = bins - free
    parameters."""

    parameters: dict[str, float]
    errors: dict[str, float | None]
    valid: bool
    message: str
    fval: float
    chi2: float
    ndf: int

    @property
    def chi2_ndf(self) -> float | None:
        return self.chi2 / self.ndf if self.ndf > 0 else None

    @property
    def shape(self) -> tuple[float, float, float]:
        """(p1, p2, p3): what `fit_normalisation` and `fit_with_signal` take."""
        return tuple(self.parameters[name] for name in SHAPE)

    def to_dict(self) -> dict:
        """JSON-ready: plain floats, None for NaN or infinite values."""
        return {"parameters": {name: _plain(v) for name, v in self.parameters.items()},
                "errors": {name: _plain(v) for name, v in self.errors.items()},
                "valid": self.valid, "message": self.message, "fval": _plain(self.fval),
                "chi2": _plain(self.chi2), "ndf": self.ndf, "chi2_ndf": _plain(self.chi2_ndf)}


@dataclass(frozen=True)
class SignalTest:
    """The background-only test of one histogram: both fits, q0 = 2 ln(L_s+b / L_b)
    (0 when the best signal yield is 0), the one-sided local p-value and its Gaussian
    significance Z = sqrt(q0). ``valid`` only if both fits are."""

    background: FitResult
    signal: FitResult
    q0: float
    p_value: float
    significance: float

    @property
    def valid(self) -> bool:
        return self.background.valid and self.signal.valid

    def to_dict(self) -> dict:
        return {"background": self.background.to_dict(), "signal": self.signal.to_dict(),
                "q0": _plain(self.q0), "p_value": _plain(self.p_value),
                "significance": _plain(self.significance), "valid": self.valid}


def fit_background(counts, edges, p3: float | None = None) -> FitResult:
    """All four parameters of the dijet function fitted to a histogram; with `p3` given,
    p3 is fixed at it (p3 = 0: the three-parameter dijet function, the usual fallback
    where a few hundred events leave the four-parameter fit degenerate)."""
    counts, edges = _histogram(counts, edges)
    fixed = () if p3 is None else ("p3",)
    if counts.sum() == 0:
        return _no_events(BACKGROUND, len(counts), fixed=fixed)
    shape = _shape_start(counts, edges)
    if p3 is not None:
        shape = (*shape[:2], float(p3))
    start = {_YIELD: counts.sum(), **dict(zip(SHAPE, shape, strict=True))}
    return _minimise(counts, edges, start, fixed=fixed)


def frozen(refit: Sequence[str] = ()) -> tuple[str, ...]:
    """The shape parameters that stay frozen when those named in `refit` are fitted again."""
    unknown = set(refit) - set(SHAPE)
    if unknown:
        raise ValueError(f"only {', '.join(SHAPE)} can be refitted, not {sorted(unknown)}")
    return tuple(name for name in SHAPE if name not in refit)


def fit_normalisation(counts, edges, shape_params: Sequence[float],
                      refit: Sequence[str] = ()) -> FitResult:
    """p0 fitted with the shape (p1, p2, p3) frozen, e.g. at another cluster's fit, except
    the parameters named in `refit`, which start there and float."""
    counts, edges = _histogram(counts, edges)
    _shape_total(edges, shape_params)
    if counts.sum() == 0:
        return _no_events(BACKGROUND, len(counts), fixed=frozen(refit), shape=shape_params)
    start = {_YIELD: counts.sum(), **dict(zip(SHAPE, shape_params, strict=True))}
    return _minimise(counts, edges, start, fixed=frozen(refit))


def fit_with_signal(counts, edges, shape_params: Sequence[float], mass: float, width: float,
                    *, free_mass: bool = False, free_width: bool = False,
                    refit: Sequence[str] = ()) -> FitResult:
    """The frozen-shape background (p0 free) plus a Gaussian of free non-negative yield at
    `mass` with `width` (GeV); with `free_mass` the mean floats within the histogram's range,
    with `free_width` the width between a quarter of the narrowest bin and half the range."""
    counts, edges = _histogram(counts, edges)
    shape_total = _shape_total(edges, shape_params)
    fixed = (*frozen(refit), *(() if free_mass else ("mass",)),
             *(() if free_width else ("width",)))
    if not edges[0] <= mass <= edges[-1] or width <= 0:
        raise ValueError(f"the signal needs a mass inside [{edges[0]}, {edges[-1]}] and a "
                         f"positive width, got mass {mass}, width {width}")
    if counts.sum() == 0:
        return _no_events((*BACKGROUND, *SIGNAL), len(counts), fixed=fixed, shape=shape_params)
    background = counts.sum() * background_counts(edges, 1.0, *shape_params) / shape_total
    window = signal_counts(edges, 1.0, mass, width) > 0.05 / len(counts)
    excess = float((counts - background)[window].sum())
    signal_yield = max(excess, math.sqrt(max(background[window].sum(), 1.0)))
    start = {_YIELD: counts.sum(), **dict(zip(SHAPE, shape_params, strict=True)),
             "signal_yield": signal_yield, "mass": mass, "width": width}
    limits = {"signal_yield": (0.0, None), "mass": (edges[0], edges[-1]),
              "width": (np.diff(edges).min() / 4, (edges[-1] - edges[0]) / 2)}
    result = _minimise(counts, edges, start, fixed, limits)
    if result.valid or not (free_mass or free_width) or not _no_signal(result):
        return result
    # At zero yield the mass and width are undetermined, which alone fails the fit.
    again = _minimise(counts, edges, start, (*frozen(refit), *SIGNAL[1:]), limits)
    return replace(again, message="no signal preferred, so mass and width were fixed at the "
                                  f"given values ({result.message}); then: {again.message}")


def local_p_value(counts, edges, shape_params: Sequence[float], mass: float, width: float,
                  *, free_mass: bool = False, free_width: bool = False,
                  refit: Sequence[str] = ()) -> SignalTest:
    """The local p-value of the background-only hypothesis at `mass`, from the likelihood
    ratio of `fit_with_signal` over `fit_normalisation` (asymptotic, one-sided:
    p = chi2_1.sf(q0) / 2, so 0.5 when no signal is preferred). With `free_mass` the
    p-value is that of the best mass, without any look-elsewhere correction."""
    background = fit_normalisation(counts, edges, shape_params, refit)
    signal = fit_with_signal(counts, edges, shape_params, mass, width, free_mass=free_mass,
                             free_width=free_width, refit=refit)
    q0 = background.fval - signal.fval  # NaN when a histogram has no events
    if not math.isfinite(q0):
        return SignalTest(background, signal, math.nan, math.nan, math.nan)
    q0 = max(q0, 0.0) if signal.parameters["signal_yield"] > 0 else 0.0
    return SignalTest(background, signal, q0, 0.5 * float(chi2_distribution.sf(q0, 1)),
                      math.sqrt(q0))


def _no_signal(result: FitResult) -> bool:
    """Whether a signal fit's yield is below one event or within its error of zero."""
    signal_yield, error = result.parameters["signal_yield"], result.errors["signal_yield"]
    return signal_yield < 1.0 or (error is not None and signal_yield < error)


def _histogram(counts, edges) -> tuple[np.ndarray, np.ndarray]:
    counts, edges = np.asarray(counts, np.float64), np.asarray(edges, np.float64)
    if edges.ndim != 1 or counts.shape != (len(edges) - 1,) or len(counts) == 0:
        raise ValueError(f"need one count per bin: {counts.shape} counts for "
                         f"{edges.shape} edges")
    if not np.isfinite(edges).all() or not (np.diff(edges) > 0).all():
        raise ValueError("bin edges must be finite and increasing")
    if edges[0] <= 0 or edges[-1] >= SQRT_S:
        raise ValueError(f"the dijet function needs 0 < m < {SQRT_S} GeV; edges span "
                         f"{edges[0]} to {edges[-1]}")
    if not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError("counts must be finite and non-negative")
    return counts, edges


def _shape_start(counts: np.ndarray, edges: np.ndarray) -> tuple[float, float, float]:
    """(p1, p2, p3) from a straight-line fit of ln(density), which is linear in
    (ln p0, p1, p2, p3), weighted by the counts (the inverse variance of ln n)."""
    filled = counts > 0
    if filled.sum() <= len(BACKGROUND):
        return DEFAULT_SHAPE
    x = (edges[1:] + edges[:-1])[filled] / 2 / SQRT_S
    design = np.stack([np.ones_like(x), np.log1p(-x), -np.log(x), -np.log(x) ** 2], axis=1)
    density = np.log(counts[filled] / np.diff(edges)[filled])
    weight = np.sqrt(counts[filled])
    solution, *_ = np.linalg.lstsq(design * weight[:, None], density * weight, rcond=None)
    shape = tuple(float(value) for value in solution[1:])
    total = background_counts(edges, 1.0, *shape).sum()
    return shape if np.isfinite(solution).all() and np.isfinite(total) and total > 0 \
        else DEFAULT_SHAPE


def _shape_total(edges: np.ndarray, shape: Sequence[float]) -> float:
    """The integral over the histogram of the dijet function with p0 = 1."""
    total = float(background_counts(edges, 1.0, *shape).sum())
    if not math.isfinite(total) or total <= 0:
        raise ValueError(f"the dijet shape {tuple(shape)} gives no finite positive yield "
                         f"between {edges[0]} and {edges[-1]} GeV")
    return total


def _model(edges: np.ndarray, with_signal: bool) -> Callable[[np.ndarray], np.ndarray]:
    """Expected counts from the internal parameters: (background yield, p1, p2, p3,
    [signal_yield, mass, width])."""

    def expected(values: np.ndarray) -> np.ndarray:
        shape = background_counts(edges, 1.0, *values[1:4])
        with np.errstate(invalid="ignore", divide="ignore"):
            counts = values[0] * shape / shape.sum()
        return counts + signal_counts(edges, *values[4:7]) if with_signal else counts

    return expected


def _minimise(counts: np.ndarray, edges: np.ndarray, start: dict[str, float],
              fixed: Sequence[str], limits: Mapping[str, tuple] | None = None) -> FitResult:
    """Minimise the deviance over the internal parameters `start` (the background yield in
    the histogram stands in for p0: unlike p0 it does not move with the shape, which keeps
    the fit well conditioned) and report p0 and its error propagated from the covariance."""
    names = list(start)
    model = _model(edges, "signal_yield" in names)

    def deviance(values: np.ndarray) -> float:
        expected = model(values)
        if not np.isfinite(expected).all() or (expected[counts > 0] <= 0).any():
            return _HUGE
        return poisson_deviance(counts, expected)

    minuit = Minuit(deviance, np.array(list(start.values())), name=names)
    minuit.errordef = Minuit.LEAST_SQUARES  # the deviance is -2 ln L up to a constant
    minuit.errors = [0.1 * abs(value) if value else 0.1 for value in start.values()]
    minuit.limits[_YIELD] = (0.0, None)
    for name, (low, high) in (limits or {}).items():
        minuit.limits[name] = (low, high)
    for name in fixed:
        minuit.fixed[name] = True
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        minuit.migrad()
        if not minuit.valid:
            minuit.migrad()  # a second descent from the first one's end often converges
        minuit.hesse()

    values = np.array(minuit.values)
    # A degenerate fit (a handful of events) can end where p0 overflows: it is reported
    # as not valid, with p0 infinite or NaN (None in `to_dict`), not raised.
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        shape_total = float(background_counts(edges, 1.0, *values[1:4]).sum())
        parameters = {"p0": float(values[0] / shape_total),
                      **{name: float(minuit.values[name]) for name in names[1:]}}
        errors = {"p0": _p0_error(minuit, edges, shape_total),
                  **{name: None if name in fixed else float(minuit.errors[name])
                     for name in names[1:]}}
        expected = model(values)
    return FitResult(parameters, errors, bool(minuit.valid and minuit.accurate),
                     _message(minuit, [str(w.message) for w in caught]), float(minuit.fval),
                     _pearson_chi2(counts, expected), len(counts) - minuit.nfit)


def _p0_error(minuit: Minuit, edges: np.ndarray, shape_total: float) -> float:
    """The error of p0 = yield / integral(p1, p2, p3), linearly propagated."""
    if minuit.covariance is None:
        return math.nan
    values = np.array(minuit.values)
    gradient = np.zeros(len(values))
    gradient[0] = 1.0 / shape_total
    for index in range(1, 4):
        if minuit.fixed[index]:
            continue
        step = 1e-5 * max(1.0, abs(values[index]))
        up, down = values[1:4].copy(), values[1:4].copy()
        up[index - 1] += step
        down[index - 1] -= step
        d_log_total = (np.log(background_counts(edges, 1.0, *up).sum())
                       - np.log(background_counts(edges, 1.0, *down).sum())) / (2 * step)
        gradient[index] = -values[0] / shape_total * d_log_total
    return float(np.sqrt(max(gradient @ np.array(minuit.covariance) @ gradient, 0.0)))


def _pearson_chi2(counts: np.ndarray, expected: np.ndarray) -> float:
    """sum (n - mu)^2 / mu; a bin with mu = 0 adds 0 if empty, else infinity."""
    safe = np.where(expected > 0, expected, 1.0)
    terms = np.where(expected > 0, (counts - expected) ** 2 / safe,
                     np.where(counts > 0, np.inf, 0.0))
    return float(terms.sum())


def _message(minuit: Minuit, caught_warnings: list[str]) -> str:
    fmin = minuit.fmin
    problems = [text for flag, text in (
        (fmin.has_reached_call_limit, "call limit reached"),
        (fmin.is_above_max_edm, f"EDM {fmin.edm:.3g} above its goal {fmin.edm_goal:.3g}"),
        (not fmin.has_valid_parameters, "invalid parameters"),
        (fmin.hesse_failed, "HESSE failed"),
        (not fmin.has_posdef_covar, "covariance not positive definite"),
        (fmin.has_made_posdef_covar, "covariance forced positive definite"),
        (not fmin.has_accurate_covar, "covariance not accurate"),
    ) if flag]
    problems += [f"warning: {text}" for text in caught_warnings]
    return "; ".join(problems) if problems else "converged"


def _no_events(names: Sequence[str], bins: int, fixed: Sequence[str] = (),
               shape: Sequence[float] | None = None) -> FitResult:
    parameters = dict.fromkeys(names, math.nan)
    if shape is not None:
        parameters.update(zip(SHAPE, (float(value) for value in shape), strict=True))
    return FitResult(parameters, dict.fromkeys(names), False, "no events in the histogram",
                     math.nan, math.nan, bins - (len(names) - len(fixed)))


def _plain(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None
