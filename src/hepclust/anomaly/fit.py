r"""Binned likelihood fits of dijet mass spectra with iminuit's cost functions: the
background models of UCluster's anomaly search (PRD 103, 092007, Sec. VI.A, Eq. (5)).

The background is the four-parameter dijet function

.. math:: \frac{dN}{dm_{jj}} = p_0 \frac{(1 - x)^{p_1}}{x^{p_2 + p_3 \ln x}},
          \qquad x = m_{jj} / \sqrt{s},

with :math:`\sqrt{s}` = 13 TeV (`SQRT_S`; the paper's "x = m_jj / 1 TeV" cannot be meant, as
(1 - x) would vanish inside the spectrum). Written as
:math:`\exp(\sum_k p_k \phi_k(m))` with :math:`\phi = (\ln(1-x), -\ln x, -\ln^2 x)` it is an
exponential family, which gives the bin integrals and their gradients from one set of
Gauss-Legendre nodes (`Binning`). A transfer function
:math:`\exp(b_1 u + b_2 u^2)`, u the mass mapped onto [-1, 1] over the fitted range,
multiplies the shape of the `transfer` model. The signal is a Gaussian of fixed width.

Every fit is an `iminuit.cost.ExtendedBinnedNLL` (Poisson, empty bins included), with the
bins outside the fitted range masked; `fit_shape` uses `BinnedNLL` (the shape alone). Fits
run on internal parameters: the yield in the fitted range instead of p0, and the shape
coefficients in a basis orthonormal over the range (p1, p2, p3 are nearly collinear over a
few TeV; in the orthonormal basis Migrad converges where it fails on p1..p3). Reported
parameters are p1..p3 (and p0) with errors propagated through that linear map.

A fit that does not converge comes back with ``valid`` False and the reason in ``message``;
nothing is raised for it.
"""

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from iminuit import Minuit
from iminuit.cost import BinnedNLL, ExtendedBinnedNLL, NormalConstraint
from scipy.special import ndtr

SQRT_S = 13_000.0  # GeV, the LHC collision energy of the LHC Olympics samples
SHAPE = ("p1", "p2", "p3")
TRANSFER = ("b1", "b2")
GAUSS_POINTS = 4  # Gauss-Legendre nodes per bin (relative error below 1e-9 for 100 GeV bins)
_NODES, _WEIGHTS = np.polynomial.legendre.leggauss(GAUSS_POINTS)


def dijet_function(mjj, p0: float, p1: float, p2: float, p3: float,
                   sqrt_s: float = SQRT_S) -> np.ndarray:
    """dN/dm of Eq. (5) at masses `mjj` (GeV, 0 < mjj < sqrt_s)."""
    x = np.asarray(mjj, np.float64) / sqrt_s
    log_x = np.log(x)
    with np.errstate(over="ignore", invalid="ignore"):
        return p0 * np.exp(p1 * np.log1p(-x) - (p2 + p3 * log_x) * log_x)


def signal_counts(edges, signal_yield: float, mass: float, width: float) -> np.ndarray:
    """The share of a Gaussian of `signal_yield` events in each bin of `edges`."""
    cdf = ndtr((np.asarray(edges, np.float64) - mass) / width)
    return signal_yield * np.diff(cdf)


class Binning:
    """A histogram's bins, the fitted range (`mask`: the bins from `low` to `high`), and the
    Gauss-Legendre nodes of every bin (in ln m, where m dN/dm is smooth) with the
    features of the exponential family at them: the dijet shape's
    (ln(1-x), -ln x, -ln^2 x), orthonormalised over the range, then u and u^2 of the
    transfer function."""

    def __init__(self, edges, low: float | None = None, high: float | None = None):
        edges = np.asarray(edges, np.float64)
        if edges.ndim != 1 or len(edges) < 2 or not np.isfinite(edges).all() \
                or not (np.diff(edges) > 0).all():
            raise ValueError("bin edges must be a finite increasing sequence")
        if edges[0] <= 0 or edges[-1] >= SQRT_S:
            raise ValueError(f"the dijet function needs 0 < m < {SQRT_S} GeV; edges span "
                             f"{edges[0]} to {edges[-1]}")
        low = edges[0] if low is None else float(low)
        high = edges[-1] if high is None else float(high)
        centres = (edges[1:] + edges[:-1]) / 2
        self.edges, self.low, self.high = edges, low, high
        self.mask = (centres > low) & (centres < high)
        if self.mask.sum() < 6:
            raise ValueError(f"the fitted range {low} to {high} GeV holds {self.mask.sum()} "
                             f"bins; the fits need at least 6")
        self.low, self.high = float(edges[:-1][self.mask][0]), float(edges[1:][self.mask][-1])
        log_edges = np.log(edges)
        centre, half = (log_edges[1:] + log_edges[:-1]) / 2, np.diff(log_edges) / 2
        mass = np.exp(centre[:, None] + half[:, None] * _NODES)  # (bins, nodes)
        self.weights = half[:, None] * _WEIGHTS * mass  # dm = m du
        x = mass / SQRT_S
        raw = np.stack([np.log1p(-x), -np.log(x), -np.log(x) ** 2], axis=-1)
        # Orthonormal combinations of the shape features over the range's nodes (weighted
        # alike), centred: theta . raw = coefficients . basis + a constant that the
        # normalisation absorbs.
        inside = raw[self.mask].reshape(-1, 3)
        self.offset = inside.mean(axis=0)
        _, singular, vt = np.linalg.svd(inside - self.offset, full_matrices=False)
        self.to_shape = vt.T / singular * math.sqrt(len(inside))  # p = to_shape @ a
        basis = (raw - self.offset) @ self.to_shape
        u = (2 * mass - (self.low + self.high)) / (self.high - self.low)
        self.features = np.concatenate([basis, u[..., None], u[..., None] ** 2], axis=-1)
        # Flat copies for speed: one row per node, and the matrix summing nodes into bins.
        self._flat_features = np.ascontiguousarray(self.features.reshape(-1, 5))
        self._flat_weights = self.weights.reshape(-1)
        bins = len(edges) - 1
        self._sum_nodes = np.kron(np.eye(bins), np.ones(GAUSS_POINTS))
        first = int(np.argmax(self.mask))
        self._inside = slice(first, first + int(self.mask.sum()))

    @property
    def bins(self) -> int:
        return len(self.edges) - 1

    def coefficients(self, shape: Sequence[float]) -> np.ndarray:
        """The orthonormal coefficients a of a dijet shape (p1, p2, p3)."""
        return np.linalg.solve(self.to_shape, np.asarray(shape, np.float64))

    def shape_of(self, coefficients: Sequence[float]) -> np.ndarray:
        return self.to_shape @ np.asarray(coefficients, np.float64)[:3]

    def subspace(self, order: int) -> np.ndarray:
        """(3, order) orthonormal columns spanning the coefficients of the dijet function
        with `order` shape parameters: 3 (p1..p3) or 2 (p3 = 0)."""
        if order == 3:
            return np.eye(3)
        if order != 2:
            raise ValueError(f"the dijet function has 2 or 3 shape parameters, not {order}")
        _, _, vt = np.linalg.svd(self.to_shape[2:3])
        return vt[1:].T

    def background(self, coefficients: np.ndarray, transfer=(0.0, 0.0),
                   gradient: bool = False):
        """Per-bin probabilities of the background (summing to 1 over the fitted range) and,
        with `gradient`, their derivatives by (a1, a2, a3, b1, b2): (5, bins)."""
        theta = np.empty(5)
        theta[:3] = coefficients[:3]
        theta[3:] = transfer
        exponent = self._flat_features @ theta
        exponent -= exponent.max()
        density = np.exp(exponent)
        density *= self._flat_weights
        bins = self._sum_nodes @ density
        inside = self._inside
        total = bins[inside].sum()
        probability = bins / total
        if not gradient:
            return probability
        moments = (self._flat_features.T * density) @ self._sum_nodes.T / total  # (5, bins)
        return probability, moments - probability * moments[:, inside].sum(axis=1,
                                                                          keepdims=True)

    def signal(self, mass: float, width: float) -> np.ndarray:
        """The Gaussian's share in each bin, per event in the fitted range."""
        share = signal_counts(self.edges, 1.0, mass, width)
        inside = share[self.mask].sum()
        return share / inside if inside > 0 else share

    def p0(self, total: float, shape: Sequence[float]) -> float:
        """p0 of a dijet function with `total` events in the fitted range."""
        integral = float((dijet_function(self._nodes(), 1.0, *shape) * self.weights)[
            self.mask].sum())
        return total / integral if integral > 0 and math.isfinite(integral) else math.nan

    def _nodes(self) -> np.ndarray:
        log_edges = np.log(self.edges)
        centre, half = (log_edges[1:] + log_edges[:-1]) / 2, np.diff(log_edges) / 2
        return np.exp(centre[:, None] + half[:, None] * _NODES)

    def expected(self, parameters: dict) -> np.ndarray:
        """Expected counts per bin of a fit's reported parameters (yield in the range,
        p1..p3, optionally b1, b2 and a signal yield at `mass` with `width`)."""
        coefficients = self.coefficients([parameters[name] for name in SHAPE])
        transfer = [parameters.get(name, 0.0) or 0.0 for name in TRANSFER]
        counts = parameters["yield"] * self.background(coefficients, transfer)
        if parameters.get("signal"):
            counts = counts + parameters["signal"] * self.signal(parameters["mass"],
                                                                 parameters["width"])
        return counts


@dataclass(frozen=True)
class FitResult:
    """One fit: reported parameters (yield in the fitted range, p0, p1..p3, and b1, b2,
    signal where fitted; the yields of a joint fit's neighbour under ``neighbour_yield``)
    with HESSE errors (None for a fixed parameter), ``valid`` with the reasons in
    ``message`` when False, ``fval`` the minimised -2 ln L (Poisson deviance), and ``ndf``
    the fitted bins less the free parameters. ``coefficients`` are the orthonormal shape
    coefficients (to freeze another fit at this shape), ``internal`` the Minuit values (to
    start another fit here)."""

    parameters: dict[str, float]
    errors: dict[str, float | None]
    valid: bool
    message: str
    fval: float
    ndf: int
    coefficients: tuple[float, ...]
    internal: dict[str, float]

    @property
    def shape(self) -> tuple[float, float, float]:
        return tuple(self.parameters[name] for name in SHAPE)

    @property
    def gof_p(self) -> float:
        """The goodness of fit: P(chi2_ndf > deviance), asymptotic."""
        from scipy.stats import chi2

        return float(chi2.sf(self.fval, self.ndf)) if self.ndf > 0 else math.nan

    def to_dict(self) -> dict:
        """JSON-ready: plain floats, None for NaN or infinite values."""
        return {"parameters": {name: _plain(v) for name, v in self.parameters.items()},
                "errors": {name: _plain(v) for name, v in self.errors.items()},
                "valid": self.valid, "message": self.message, "fval": _plain(self.fval),
                "ndf": self.ndf, "gof_p": _plain(self.gof_p)}


def shape_start(counts: np.ndarray, binning: Binning, order: int = 3) -> np.ndarray:
    """Start coefficients from a straight-line fit of ln(density) in the range, which is
    linear in (ln p0, p1, p2, p3), weighted by the counts; `order` 2 fixes p3 at 0."""
    counts = np.asarray(counts, np.float64)
    filled = binning.mask & (counts > 0)
    if filled.sum() <= order + 1:
        return binning.coefficients((10.0, 5.0, 0.0))
    centres = (binning.edges[1:] + binning.edges[:-1])[filled] / 2
    x = centres / SQRT_S
    design = np.stack([np.ones_like(x), np.log1p(-x), -np.log(x), -np.log(x) ** 2],
                      axis=1)[:, :order + 1]
    density = np.log(counts[filled] / np.diff(binning.edges)[filled])
    weight = np.sqrt(counts[filled])
    solution, *_ = np.linalg.lstsq(design * weight[:, None], density * weight, rcond=None)
    shape = np.zeros(3)
    shape[:order] = solution[1:]
    if not np.isfinite(shape).all():
        return binning.coefficients((10.0, 5.0, 0.0))
    return binning.coefficients(shape)


class _Spectrum:
    """The scaled cdf of one histogram's model for `ExtendedBinnedNLL`, and its gradient:
    yield x background probability (x transfer function) + signal yield x Gaussian share.
    Its parameters: yield, the shape coefficients c (a = `subspace` c; none when the shape
    is `fixed`), b1 and b2 with a transfer function, signal with a `template`."""

    def __init__(self, binning: Binning, *, subspace: np.ndarray | None,
                 fixed: np.ndarray | None = None, transfer: bool = False,
                 template: np.ndarray | None = None):
        self.binning, self.subspace, self.fixed = binning, subspace, fixed
        self.transfer, self.template = transfer, template
        order = 0 if subspace is None else subspace.shape[1]
        self.names = ["yield", *(f"c{i + 1}" for i in range(order)),
                      *(TRANSFER if transfer else ()),
                      *(("signal",) if template is not None else ())]
        self.order = order

    def _split(self, args):
        args = np.asarray(args, np.float64)
        position = 1 + self.order
        coefficients = self.fixed if self.subspace is None else self.subspace @ args[1:position]
        transfer = args[position:position + 2] if self.transfer else (0.0, 0.0)
        signal = args[-1] if self.template is not None else 0.0
        return args[0], coefficients, transfer, signal

    def mu(self, args) -> np.ndarray:
        total, coefficients, transfer, signal = self._split(args)
        mu = total * self.binning.background(coefficients, transfer)
        return mu + signal * self.template if self.template is not None else mu

    def __call__(self, xe, *args):
        return np.concatenate([[0.0], np.cumsum(self.mu(args))])

    def jacobian(self, args) -> np.ndarray:
        """d mu / d parameter for every bin: (parameters, bins), in `names` order."""
        total, coefficients, transfer, _ = self._split(args)
        probability, moments = self.binning.background(coefficients, transfer, gradient=True)
        rows = [probability[None]]
        if self.subspace is not None:
            rows.append(total * self.subspace.T @ moments[:3])
        if self.transfer:
            rows.append(total * moments[3:])
        if self.template is not None:
            rows.append(self.template[None])
        return np.concatenate(rows)

    def gradient(self, xe, *args):
        rows = self.jacobian(args)
        return np.concatenate([np.zeros((len(rows), 1)), np.cumsum(rows, axis=1)], axis=1)


def _nll(counts: np.ndarray, spectrum: _Spectrum, binning: Binning,
         suffix: str = "") -> ExtendedBinnedNLL:
    names = [f"{name}{suffix}" if name == "yield" else name for name in spectrum.names]
    cost = ExtendedBinnedNLL(counts, binning.edges, spectrum, grad=spectrum.gradient,
                             name=names)
    cost.mask = binning.mask
    return cost


def _checked(counts, binning: Binning, what: str) -> np.ndarray:
    counts = np.asarray(counts, np.float64)
    if counts.shape != (binning.bins,) or not np.isfinite(counts).all() or (counts < 0).any():
        raise ValueError(f"{what}: need one finite non-negative count per bin "
                         f"({binning.bins}), got shape {counts.shape}")
    return counts


def fit(counts, binning: Binning, *, order: int = 3, frozen: np.ndarray | None = None,
        neighbour=None, transfer_widths: tuple[float, float] | None = None,
        template: np.ndarray | None = None, start: FitResult | None = None,
        errors: bool = True) -> FitResult:
    """One extended binned likelihood fit of a cluster's histogram `counts`:

    - the dijet function with its shape free (`order` 3: p1..p3; 2: p3 = 0), or frozen at
      the orthonormal coefficients `frozen` (the yield alone free: the paper's model);
    - with `neighbour` counts: the joint fit of the neighbour's histogram (its own yield,
      the shared shape) and the cluster's, whose shape is multiplied by
      exp(b1 u + b2 u^2); b1 and b2 are constrained by Gaussians of `transfer_widths`
      (nuisance parameters), or free where that is None;
    - with `template` (each bin's share of a Gaussian signal), a non-negative signal
      yield added to the cluster's model, started at a Newton step from `start`.

    `start` (an earlier fit of the same histograms) starts the common parameters. Without
    `errors` (toys, scans) HESSE is skipped and Migrad runs at strategy 0."""
    counts = _checked(counts, binning, "cluster histogram")
    joint = neighbour is not None
    subspace = None if frozen is not None else binning.subspace(order)
    spectrum = _Spectrum(binning, subspace=subspace, fixed=frozen, transfer=joint,
                         template=template)
    cost = _nll(counts, spectrum, binning)
    values = {"yield": max(counts[binning.mask].sum(), 1.0)}
    if subspace is not None:
        source = counts + (np.asarray(neighbour, np.float64) if joint else 0.0)
        values.update(zip(spectrum.names[1:1 + spectrum.order],
                          subspace.T @ shape_start(source, binning, order), strict=True))
    if joint:
        neighbour = _checked(neighbour, binning, "neighbour histogram")
        other = _Spectrum(binning, subspace=subspace)
        cost = cost + _nll(neighbour, other, binning, suffix="_neighbour")
        values.update(yield_neighbour=max(neighbour[binning.mask].sum(), 1.0), b1=0.0, b2=0.0)
        if transfer_widths is not None:
            cost = cost + NormalConstraint(list(TRANSFER), [0.0, 0.0], list(transfer_widths))
    if start is not None:
        values.update({k: v for k, v in start.internal.items() if k in values})
    if template is not None:
        values["signal"] = _signal_start(counts, binning, spectrum, values)
    names = list(cost._parameters)
    minuit = Minuit(cost, *[values[name] for name in names], name=names)
    for name in names:
        minuit.errors[name] = 0.05 * values[name] + 1.0 if name.startswith(
            ("yield", "signal")) else 0.05
        if name.startswith(("yield", "signal")):
            minuit.limits[name] = (0.0, None)
    minuit.strategy = 1 if errors else 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        minuit.migrad()
        if not minuit.valid:
            minuit.strategy = 1
            minuit.migrad()
        if errors:
            minuit.hesse()
    return _result(minuit, binning, spectrum, [str(w.message) for w in caught], errors)


def _signal_start(counts, binning, spectrum: _Spectrum, values: dict) -> float:
    """One Newton step in the signal yield from zero, at the background-only start."""
    args = [values.get(name, 0.0) for name in spectrum.names[:-1]] + [0.0]
    mu = np.maximum(spectrum.mu(args), 1e-9)[binning.mask]
    template, n = spectrum.template[binning.mask], counts[binning.mask]
    step = float((template * (n - mu) / mu).sum() / (template ** 2 / mu).sum())
    return max(step, 1.0)


def _result(minuit: Minuit, binning: Binning, spectrum: _Spectrum,
            caught: list[str], errors: bool) -> FitResult:
    internal = {name: float(minuit.values[name]) for name in minuit.parameters}
    order = spectrum.order
    if spectrum.subspace is not None:
        c = np.array([internal[f"c{i + 1}"] for i in range(order)])
        coefficients = spectrum.subspace @ c
        jacobian = binning.to_shape @ spectrum.subspace  # (3, order)
        index = [minuit.parameters.index(f"c{i + 1}") for i in range(order)]
        if errors and minuit.covariance is not None:
            covariance = np.array(minuit.covariance)[np.ix_(index, index)]
            shape_errors = np.sqrt(np.maximum(np.diag(jacobian @ covariance @ jacobian.T), 0))
        else:
            shape_errors = np.full(3, math.nan)
        if order == 2:
            shape_errors[2] = math.nan
    else:
        coefficients = np.asarray(spectrum.fixed, np.float64)
        shape_errors = np.full(3, math.nan)
    shape = binning.shape_of(coefficients)
    parameters = {"yield": internal["yield"], "p0": binning.p0(internal["yield"], shape),
                  **dict(zip(SHAPE, (float(v) for v in shape), strict=True))}
    uncertainties = {"yield": _error(minuit, "yield"), "p0": None,
              **{name: (None if spectrum.subspace is None or (order == 2 and name == "p3")
                        else float(value)) for name, value in zip(SHAPE, shape_errors,
                                                                  strict=True)}}
    for name in (*TRANSFER, "signal", "yield_neighbour"):
        if name in internal:
            parameters[name], uncertainties[name] = internal[name], _error(minuit, name)
    fitted_bins = int(binning.mask.sum()) * (2 if "yield_neighbour" in internal else 1)
    valid = bool(minuit.valid and (minuit.accurate or not errors))
    return FitResult(parameters, uncertainties, valid,
                     _message(minuit, caught), float(minuit.fval), fitted_bins - minuit.nfit,
                     tuple(float(v) for v in coefficients), internal)


def _error(minuit: Minuit, name: str) -> float | None:
    return None if minuit.fixed[name] else float(minuit.errors[name])


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


def _plain(value: float | None) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def score_scan(result: FitResult, counts, binning: Binning, templates: np.ndarray, *,
               order: int = 3, frozen: np.ndarray | None = None, neighbour=None,
               transfer_widths: tuple[float, float] | None = None) -> np.ndarray:
    """The signed score statistic z(m) of a signal at every row of `templates` (masses,
    bins), at the background-only fit `result` made with the same settings as `fit`:
    z = U_s / sqrt(I_ss - I_s,theta I_theta,theta^-1 I_theta,s), with U_s the derivative of
    ln L by the signal yield at zero and I the Fisher information (expected counts of the
    fit, the constraints of b1 and b2 included). max(z, 0)^2 is asymptotically the
    likelihood ratio q0 (Rao's score test), for every mass at the cost of one fit."""
    counts = _checked(counts, binning, "cluster histogram")
    joint = neighbour is not None
    subspace = None if frozen is not None else binning.subspace(order)
    spectra = [(_Spectrum(binning, subspace=subspace, fixed=frozen, transfer=joint), counts,
                "")]
    if joint:
        spectra.append((_Spectrum(binning, subspace=subspace),
                        _checked(neighbour, binning, "neighbour histogram"), "_neighbour"))
    names = list(result.internal)
    index = {name: i for i, name in enumerate(names) if name != "signal"}
    size = len(index)
    information = np.zeros((size, size))
    mask = binning.mask
    for spectrum, _, suffix in spectra:
        own = [f"{n}{suffix}" if n == "yield" else n for n in spectrum.names]
        args = [result.internal[name] for name in own]
        mu = np.maximum(spectrum.mu(args)[mask], 1e-12)
        jacobian = spectrum.jacobian(args)[:, mask]
        rows = [index[name] for name in own]
        information[np.ix_(rows, rows)] += (jacobian / mu) @ jacobian.T
        if not suffix:
            cluster_mu, cluster_jacobian, cluster_rows = mu, jacobian, rows
    if joint and transfer_widths is not None:
        for name, width in zip(TRANSFER, transfer_widths, strict=True):
            information[index[name], index[name]] += 1.0 / width ** 2
    signal = np.asarray(templates, np.float64)[:, mask]  # (masses, bins)
    score = (signal * (counts[mask] / cluster_mu - 1.0)).sum(axis=1)
    cross = np.zeros((len(signal), size))
    cross[:, cluster_rows] = (signal / cluster_mu) @ cluster_jacobian.T
    own_information = (signal ** 2 / cluster_mu).sum(axis=1)
    solved = np.linalg.lstsq(information, cross.T, rcond=None)[0]  # (size, masses)
    variance = own_information - np.einsum("mi,im->m", cross, solved)
    return score / np.sqrt(np.maximum(variance, 1e-12 * own_information))


def fit_shape(counts, binning: Binning, order: int = 3) -> FitResult:
    """The shape alone (p1..p3, or p1, p2 with `order` 2) of the dijet function fitted to a
    histogram's fitted range with `BinnedNLL` (multinomial: the yield is the observed one);
    ``fval`` is the multinomial deviance, a goodness of fit with ``ndf`` = bins - 1 - order."""
    counts = _checked(counts, binning, "histogram")
    subspace = binning.subspace(order)

    def cdf(xe, *c):
        del xe
        return np.concatenate([[0.0], np.cumsum(binning.background(subspace @ np.array(c)))])

    def gradient(xe, *c):
        del xe
        _, moments = binning.background(subspace @ np.array(c), gradient=True)
        rows = subspace.T @ moments[:3]
        return np.concatenate([np.zeros((order, 1)), np.cumsum(rows, axis=1)], axis=1)

    names = [f"c{i + 1}" for i in range(order)]
    cost = BinnedNLL(counts, binning.edges, cdf, grad=gradient, name=names)
    cost.mask = binning.mask
    start = subspace.T @ shape_start(counts, binning, order)
    minuit = Minuit(cost, *start, name=names)
    minuit.errors = [0.05] * order
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        minuit.migrad()
        if not minuit.valid:
            minuit.migrad()
    coefficients = subspace @ np.array(minuit.values)
    shape = binning.shape_of(coefficients)
    total = float(counts[binning.mask].sum())
    return FitResult({"yield": total, "p0": binning.p0(total, shape),
                      **dict(zip(SHAPE, (float(v) for v in shape), strict=True))},
                     {"yield": None, "p0": None, "p1": None, "p2": None, "p3": None},
                     bool(minuit.valid), _message(minuit, [str(w.message) for w in caught]),
                     float(minuit.fval), int(binning.mask.sum()) - 1 - order,
                     tuple(float(v) for v in coefficients),
                     {name: float(minuit.values[name]) for name in names})


def choose_fit_range(mjj, edges, high: float, min_p: float = 0.05, gap_bins: int = 3,
                     order: int = 2) -> dict:
    """The start of the fitted m_jj range, from the data. The trigger requirement makes the
    spectrum rise to a plateau before it falls as the dijet function does, and a fit that
    starts on the turn-on bends its shape to absorb the deficit there, so a goodness of fit
    over the whole range barely notices. Instead each candidate start s (the bin edges from
    the histogram's highest bin upward) is tested where the turn-on would show: the shape
    (`fit_shape`, `order` 2: the three-parameter function, the least flexible) is fitted
    from `gap_bins` bins above s to `high` and extrapolated down to s; s is taken when the
    `gap_bins` bins below the fit agree with the extrapolation (Poisson deviance,
    chi2 with `gap_bins` degrees of freedom, p >= `min_p`) and the fit itself is good
    (p >= `min_p`). Every candidate tried is reported."""
    from scipy.stats import chi2

    edges = np.asarray(edges, np.float64)
    counts, _ = np.histogram(np.asarray(mjj, np.float64), bins=edges)
    below_high = edges[1:] <= high
    peak = int(np.argmax(np.where(below_high, counts, -1)))
    candidates, chosen = [], None
    for index in range(peak, len(edges) - 1 - gap_bins):
        start, reference = edges[index], edges[index + gap_bins]
        try:
            binning = Binning(edges, reference, high)
        except ValueError:
            break
        result = fit_shape(counts, binning, order)
        probability = binning.background(np.array(result.coefficients))
        gap = slice(index, index + gap_bins)
        expected = counts[binning.mask].sum() * probability[gap]
        observed = counts[gap].astype(np.float64)
        deviance = float(2 * np.sum(expected - observed + np.where(
            observed > 0, observed * np.log(np.maximum(observed, 1) / expected), 0.0)))
        gap_p = float(chi2.sf(deviance, gap_bins))
        candidates.append({"low": float(start), "gap_p": gap_p, "gap_deviance": deviance,
                           "observed_over_expected": (observed / expected).tolist(),
                           "fit_gof_p": _plain(result.gof_p), "valid": result.valid})
        if result.valid and gap_p >= min_p and result.gof_p >= min_p:
            chosen = float(start)
            break
    if chosen is None:
        raise ValueError(f"no start of the fitted range between {edges[peak]} and {high} GeV "
                         f"passes the turn-on test at p >= {min_p}")
    return {"low": chosen, "high": float(high), "peak": float(edges[peak]), "min_p": min_p,
            "gap_bins": gap_bins, "events": int(counts.sum()), "candidates": candidates,
            "counts": counts.tolist(), "edges": edges.tolist()}
