"""The TrackML-like events: ACTS Fatras in the generic detector, digitisation, tables."""

import dataclasses
import filecmp

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hepclust.generate import digitize
from hepclust.generate.fatras import GenericDetector, pack_barcode
from hepclust.generate.particle_gun import GunSettings, sample_power_law, shoot
from hepclust.generate.tracking_events import EventSettings, simulate_event, simulate_events
from hepclust.io.formats import cells_path, convert, particles_path
from hepclust.io.parquet import read_table
from hepclust.io.schema import TRACKML_HITS, TRACKML_PARTICLES
from hepclust.io.trackml import (
    find_events,
    read_trackml_event,
    read_trackml_events,
    write_trackml_csv,
)
from hepclust.io.trackml_cells import CELL_FEATURES, TRACKML_CELLS, VOLUMES

# TrackML's barrel layer radii (mm) by (volume, layer).
BARREL_RADII = {(8, 2): 32, (8, 4): 72, (8, 6): 116, (8, 8): 172,
                (13, 2): 260, (13, 4): 360, (13, 6): 500, (13, 8): 660,
                (17, 2): 820, (17, 4): 1020}
SMALL = EventSettings(source="gun", density=0.03)  # 300 particles from 6 vertices


@pytest.fixture(scope="module")
def detector():
    return GenericDetector(field_tesla=2.0)


@pytest.fixture(scope="module")
def event(detector):
    return simulate_event(detector, SMALL, seed=11, event_id=1)


def one_particle(pt, eta, phi, charge=-1):
    """A gun event with one muon from the origin."""
    pdg = 13 if charge < 0 else -13
    return {"vertex": np.array([1]), "pdg": np.array([pdg]), "q": np.array([charge]),
            "m": np.array([0.1056583755]), "vx": np.zeros(1), "vy": np.zeros(1),
            "vz": np.zeros(1), "px": np.array([pt * np.cos(phi)]),
            "py": np.array([pt * np.sin(phi)]), "pz": np.array([pt * np.sinh(eta)])}


def fit_circle(x, y):
    """Algebraic least-squares circle through points: (centre x, centre y, radius)."""
    a = np.stack([x, y, np.ones_like(x)], axis=1)
    cx, cy, c = np.linalg.lstsq(a, x * x + y * y, rcond=None)[0]
    cx, cy = cx / 2, cy / 2
    return cx, cy, np.sqrt(c + cx * cx + cy * cy)


def test_the_geometry_has_trackmls_volumes_and_layers(detector):
    modules = detector.modules
    assert set(np.unique(modules.volume_id)) == {7, 8, 9, 12, 13, 14, 16, 17, 18}
    barrel = np.isin(modules.volume_id, (8, 13, 17))
    layers = zip(modules.volume_id[barrel], modules.layer_id[barrel], strict=True)
    assert {(int(v), int(la)) for v, la in layers} == set(BARREL_RADII)


def test_barrel_hits_lie_on_the_layer_radii(event):
    hits = event.hits
    volume, layer = hits["volume_id"].to_numpy(), hits["layer_id"].to_numpy()
    radius = np.hypot(hits["tx"].to_numpy(), hits["ty"].to_numpy())
    for (v, la), nominal in BARREL_RADII.items():
        on_layer = (volume == v) & (layer == la)
        assert on_layer.sum() > 0, (v, la)
        # Flat, tilted modules: a hit is up to a few mm off the nominal radius.
        tolerance = 3.0 if v == 8 else 7.0
        assert np.all(np.abs(radius[on_layer] - nominal) < tolerance), (v, la)


@pytest.mark.parametrize("charge", [-1, 1])
def test_track_curvature_matches_the_field(detector, charge):
    pt, field = 2.0, 2.0
    simhits, _ = detector.simulate(one_particle(pt, eta=0.2, phi=0.7, charge=charge), seed=1,
                                   interactions=False)
    x, y = simhits["tx"].to_numpy(), simhits["ty"].to_numpy()
    assert len(x) >= 8
    cx, cy, radius_mm = fit_circle(np.append(x, 0.0), np.append(y, 0.0))
    assert radius_mm / 1000 == pytest.approx(pt / (0.299792458 * field), rel=2e-3)
    # Positive tracks bend clockwise seen from +z: the centre is to their right, where
    # the z component of direction x centre is negative.
    direction = np.array([np.cos(0.7), np.sin(0.7)])
    side = direction[0] * cy - direction[1] * cx
    assert np.sign(side) == -charge


def test_measured_hits_lie_within_a_pitch_of_the_truth_on_the_mid_plane(event, detector):
    hits = event.hits
    modules = detector.modules
    geometry = {(int(v), int(la), int(m)): row for row, (v, la, m) in enumerate(zip(
        modules.volume_id, modules.layer_id, modules.module_id, strict=True))}
    signal = hits.filter(pc.not_equal(hits["particle_id"], 0))
    rows = np.array([geometry[key] for key in zip(*(signal[c].to_pylist() for c in (
        "volume_id", "layer_id", "module_id")), strict=True)])
    measured = np.stack([signal[c].to_numpy() for c in "xyz"], axis=1).astype(np.float64)
    truth = np.stack([signal[c].to_numpy() for c in ("tx", "ty", "tz")], axis=1)
    residual = digitize.to_local(modules, rows, measured) - digitize.to_local(modules, rows,
                                                                              truth)
    assert np.abs(digitize.to_local(modules, rows, measured)[:, 2]).max() < 1e-2
    pixel = np.isin(signal["volume_id"].to_numpy(), (7, 8, 9))
    # The cluster centre follows the track's mid-plane crossing: pixel residuals are a
    # fraction of the 50 um pitch, well inside the cluster.
    assert np.median(np.abs(residual[pixel, :2])) < 0.025
    assert np.quantile(np.abs(residual[pixel, 0]), 0.95) < 0.1


def test_noise_hits_lie_inside_their_modules(detector):
    modules = detector.modules
    rows, position = digitize.noise(modules, 5000, np.random.default_rng(2))
    local = digitize.to_local(modules, rows, position)
    clipped = digitize.clip_to_module(modules, rows, local)
    np.testing.assert_allclose(clipped, local, atol=1e-6)
    assert np.abs(local[:, 2]).max() < 1e-6


def test_event_tables_follow_trackml(event):
    hits, particles = event.hits, event.particles
    assert hits.schema == pa.schema([*TRACKML_HITS, *CELL_FEATURES])
    assert particles.schema == TRACKML_PARTICLES
    assert hits["hit_id"].to_pylist() == list(range(1, hits.num_rows + 1))
    order = np.lexsort([hits[c].to_numpy() for c in ("module_id", "layer_id", "volume_id")])
    assert np.array_equal(order, np.arange(hits.num_rows))
    noise = hits["particle_id"].to_numpy() == 0
    volume = hits["volume_id"].to_numpy()
    for part, fraction in SMALL.noise_fraction:
        in_part = np.isin(volume, VOLUMES[part])
        assert noise[in_part].mean() == pytest.approx(fraction, abs=0.02), part
    assert (hits["cell_count"].to_numpy() > 0).all()
    ids, counts = np.unique(hits["particle_id"].to_numpy()[~noise], return_counts=True)
    nhits = dict(zip(particles["particle_id"].to_pylist(), particles["nhits"].to_pylist(),
                     strict=True))
    assert all(nhits[i] == c for i, c in zip(ids.tolist(), counts.tolist(), strict=True))
    assert pc.min(particles["particle_id"]).as_py() > 0
    assert particles.num_rows >= 300  # secondaries come on top
    assert pc.sum(hits["weight"]).as_py() == pytest.approx(1.0, rel=1e-5)
    assert hits.filter(pc.equal(hits["particle_id"], 0))["weight"].to_numpy().max() == 0


def test_events_depend_only_on_seed_and_number(detector, event):
    again = simulate_event(detector, SMALL, seed=11, event_id=1)
    other = simulate_event(detector, SMALL, seed=11, event_id=2)
    assert again.hits.equals(event.hits)
    assert again.particles.equals(event.particles)
    assert again.cells.equals(event.cells)
    assert not other.hits["x"].equals(event.hits["x"])


def test_gun_spectrum_and_species():
    settings = GunSettings(particles=20000, vertices=50)
    gun = shoot(settings, np.random.default_rng(1))
    pt = np.hypot(gun["px"], gun["py"])
    assert pt.min() >= settings.pt_min
    assert 0.35 < pt.mean() < 0.6
    eta = np.arcsinh(gun["pz"] / pt)
    assert np.abs(eta).max() <= settings.eta_max
    leptons = np.isin(np.abs(gun["pdg"]), (11, 13)).mean()
    assert leptons == pytest.approx(settings.lepton_fraction, abs=0.005)
    assert set(np.unique(gun["q"])) == {-1, 1}
    assert np.std(gun["vz"]) == pytest.approx(settings.sigma_z_mm, rel=0.3)
    assert np.abs(gun["vx"]).max() < 0.1


def test_power_law_sampling_matches_its_mean():
    values = sample_power_law(np.random.default_rng(0), 200000, 0.15, 100.0, 2.5)
    a = 1 - 2.5
    expected = (a / (a + 1)) * (100.0 ** (a + 1) - 0.15 ** (a + 1)) / (100.0**a - 0.15**a)
    assert values.mean() == pytest.approx(expected, rel=0.02)


def test_barcodes_pack_into_distinct_ids():
    columns = {f"particle_id_{n}": np.array(v) for n, v in
               (("pv", [1, 1, 2]), ("sv", [0, 0, 0]), ("part", [1, 2, 1]), ("gen", [0, 1, 0]),
                ("subpart", [0, 3, 0]))}
    ids = pack_barcode(columns)
    assert len(set(ids.tolist())) == 3
    assert ids.min() > 0


def test_csv_parquet_csv_round_trip_is_lossless(event, tmp_path):
    hits, particles = event.hits, event.particles
    first = write_trackml_csv(hits, particles, tmp_path / "a", 1, event.cells)
    assert convert(f"{first}-hits.csv", tmp_path / "event.parquet").rows == hits.num_rows
    again_hits = read_table(tmp_path / "event.parquet", TRACKML_HITS)
    again_particles = read_table(particles_path(tmp_path / "event.parquet"), TRACKML_PARTICLES)
    again_cells = read_table(cells_path(tmp_path / "event.parquet"), TRACKML_CELLS)
    assert again_hits.equals(hits)
    assert again_cells.equals(event.cells)
    second = write_trackml_csv(again_hits, again_particles, tmp_path / "b", 1, again_cells)
    for part in ("hits", "truth", "particles", "cells"):
        assert filecmp.cmp(f"{first}-{part}.csv", f"{second}-{part}.csv", shallow=False)


def test_simulated_events_read_back_with_their_numbers(tmp_path):
    settings = dataclasses.replace(SMALL, density=0.005)
    stats = simulate_events(range(4, 6), 3, settings, tmp_path)
    assert stats.events == 2
    prefixes = find_events(tmp_path)
    assert [p.name for p in prefixes] == ["event000000004", "event000000005"]
    hits, particles = read_trackml_events(prefixes)
    single, _ = read_trackml_event(prefixes[1])
    assert set(hits["event_id"].to_pylist()) == {4, 5}
    assert pc.sum(pc.equal(hits["event_id"], 5)).as_py() == single.num_rows
    assert particles.num_rows > 0
