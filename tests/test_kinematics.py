import numpy as np
import pytest

from hepclust.features.kinematics import cartesian, cylindrical, delta_r, wrap_phi


def test_wrap_phi_maps_into_half_open_interval():
    wrapped = wrap_phi(np.array([np.pi, -np.pi, 3 * np.pi, 0.5, -0.5 - 2 * np.pi]))
    assert wrapped == pytest.approx([np.pi, np.pi, np.pi, 0.5, -0.5])


def test_delta_r_crosses_the_phi_seam():
    assert delta_r(0.0, np.pi - 0.1, 0.0, -np.pi + 0.1) == pytest.approx(0.2)
    assert delta_r(1.0, 0.0, -2.0, 0.0) == pytest.approx(3.0)


def test_cartesian_and_cylindrical_round_trip():
    pt, eta, phi, mass = np.array([10.0, 250.0]), np.array([-1.2, 2.5]), np.array([3.0, -0.4]), \
        np.array([0.14, 80.4])
    back = cylindrical(*cartesian(pt, eta, phi, mass))
    for got, want in zip(back, (pt, eta, phi, mass), strict=True):
        assert got == pytest.approx(want, rel=1e-6)
