"""Small vectorised kinematics helpers over numpy or awkward arrays."""

import awkward as ak
import numpy as np


def wrap_phi(dphi):
    """Map an angle difference into (-pi, pi]."""
    return np.pi - np.mod(np.pi - dphi, 2 * np.pi)


def delta_r(eta1, phi1, eta2, phi2):
    return np.hypot(eta1 - eta2, wrap_phi(phi1 - phi2))


def cartesian(pt, eta, phi, mass=0.0):
    """(px, py, pz, E) from (pT, eta, phi, m)."""
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    energy = np.sqrt(px**2 + py**2 + pz**2 + mass**2)
    return px, py, pz, energy


def cylindrical(px, py, pz, energy):
    """(pT, eta, phi, m) of numpy arrays; eta is 0 for a particle along the beam."""
    pt = np.hypot(px, py)
    eta = np.arcsinh(np.divide(pz, pt, out=np.zeros_like(pt), where=pt > 0))
    mass = np.sqrt(np.maximum(energy**2 - pt**2 - pz**2, 0))
    return pt, eta, np.arctan2(py, px), mass


def rapidity(pz, energy):
    return 0.5 * np.log((energy + pz) / np.maximum(energy - pz, 1e-12))


def momentum_records(px, py, pz, energy, **extra) -> ak.Array:
    """An awkward array of records with the fields fastjet reads (px, py, pz, E)."""
    return ak.zip({"px": px, "py": py, "pz": pz, "E": energy, **extra})
