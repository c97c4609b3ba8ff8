"""Jet clustering with fastjet over many events at once, and N-subjettiness.

`cluster_jets` runs fastjet's awkward interface on a batch of events and returns
the jets of each event sorted by decreasing pT, with the index of each jet's
constituents in the input particle list. `nsubjettiness` is tau_N with beta = 1
and exclusive-kt axes (Thaler and Van Tilburg, JHEP 03 (2011) 015):

    tau_N = sum_i pT_i min_k dR(i, axis_k) / (R0 sum_i pT_i)

where dR is measured in (rapidity, phi) as fjcontrib's Nsubjettiness does.
"""

import warnings

import awkward as ak
import fastjet
import fastjet._swig
import numpy as np

from hepclust.features.kinematics import momentum_records, rapidity, wrap_phi

# FastJet prints a 13-line banner on stdout at its first clustering; a null stream (the
# C++ ClusterSequence::set_fastjet_banner_stream, only reachable through the SWIG module)
# silences it, so that stdout carries only the program's own output.
fastjet._swig.ClusterSequence.set_fastjet_banner_stream(None)

# Large enough that the kt beam distance never wins inside one jet.
_KT_AXES_RADIUS = 10.0


def cluster_jets(particles: ak.Array, radius: float, min_pt: float = 0.0,
                 algorithm=fastjet.antikt_algorithm) -> tuple[ak.Array, ak.Array]:
    """Cluster each event of `particles` (records with px, py, pz, E).

    Returns (jets, constituent_index): jets as records (px, py, pz, E) of shape
    (event, jet), pT-ordered, with pT > min_pt; constituent_index of shape
    (event, jet, constituent) indexing the event's particles.
    """
    inputs = momentum_records(particles.px, particles.py, particles.pz, particles.E)
    sequence = fastjet.ClusterSequence(inputs, fastjet.JetDefinition(algorithm, radius))
    jets = sequence.inclusive_jets(min_pt=min_pt)
    index = sequence.constituent_index(min_pt=min_pt)
    order = ak.argsort(np.hypot(jets.px, jets.py), axis=1, ascending=False)
    return jets[order], index[order]


def constituents_of(particles: ak.Array, index: ak.Array) -> ak.Array:
    """The constituents of every jet, flattened over events: shape (jet, particle).

    `particles` has shape (event, particle) and `index` (event, jet, constituent)."""
    starts = np.cumsum(ak.to_numpy(ak.num(particles, axis=1))) - ak.to_numpy(
        ak.num(particles, axis=1))
    global_index = ak.flatten(index + starts, axis=1)
    flat = ak.flatten(particles, axis=1)
    return ak.unflatten(flat[ak.flatten(global_index)], ak.num(global_index, axis=1))


def nsubjettiness(constituents: ak.Array, n_axes: int, radius: float) -> np.ndarray:
    """tau_N for each jet; `constituents` has shape (jet, particle) with px, py, pz, E.

    Jets with fewer than `n_axes` constituents get tau_N = 0 (they are fully resolved).
    """
    counts = ak.to_numpy(ak.num(constituents, axis=1))
    tau = np.zeros(len(counts))
    enough = counts >= n_axes
    if not enough.any():
        return tau
    jets = constituents[enough]
    sequence = fastjet.ClusterSequence(
        momentum_records(jets.px, jets.py, jets.pz, jets.E),
        fastjet.JetDefinition(fastjet.kt_algorithm, _KT_AXES_RADIUS),
    )
    with warnings.catch_warnings():
        # fastjet 3.5 compares the JetDefinition to the algorithm enum and so warns even
        # for kt, the one algorithm the warning is meant to allow.
        warnings.filterwarnings("ignore", "dcut and exclusive jets", UserWarning)
        axes = sequence.exclusive_jets(n_jets=n_axes)
    pt = np.hypot(jets.px, jets.py)
    rap, phi = rapidity(jets.pz, jets.E), np.arctan2(jets.py, jets.px)
    axes_rap, axes_phi = rapidity(axes.pz, axes.E), np.arctan2(axes.py, axes.px)
    nearest = None
    for k in range(n_axes):
        distance = np.hypot(rap - axes_rap[:, k], wrap_phi(phi - axes_phi[:, k]))
        nearest = distance if nearest is None else np.minimum(nearest, distance)
    tau[enough] = ak.to_numpy(ak.sum(pt * nearest, axis=1) / (radius * ak.sum(pt, axis=1)))
    return tau


def tau21(constituents: ak.Array, radius: float) -> np.ndarray:
    """tau_2 / tau_1 per jet; 0 where tau_1 is 0 (a single-particle jet)."""
    tau1 = nsubjettiness(constituents, 1, radius)
    tau2 = nsubjettiness(constituents, 2, radius)
    return np.divide(tau2, tau1, out=np.zeros_like(tau1), where=tau1 > 0)
