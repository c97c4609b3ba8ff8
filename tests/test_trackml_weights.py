import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hepclust.errors import InputError
from hepclust.io.parquet import conform
from hepclust.io.schema import TRACKML_HITS, TRACKML_PARTICLES
from hepclust.tracking.weights import ORDER_TEMPLATE, event_weights, pt_weight, trackml_weights

# Particle 7: 9 hits at 5 GeV; particle 3: 3 hits; particle 5: 5 hits at 1.75 GeV; noise.
PARTICLE = np.array([7] * 9 + [3] * 3 + [5] * 5 + [0] * 2)
PT = np.array([5.0] * 9 + [1.0] * 3 + [1.75] * 5 + [0.0] * 2)


@pytest.fixture
def distance():
    """Each particle's hits at distances 1, 2, ..., in a shuffled order."""
    rng = np.random.default_rng(3)
    distance = np.zeros(len(PARTICLE))
    for particle in (7, 3, 5, 0):
        mine = np.flatnonzero(np.equal(PARTICLE, particle))
        distance[mine] = rng.permutation(len(mine)) + 1.0
    return distance


def test_pt_weight():
    assert pt_weight(np.array([0.3, 1.75, 5.0])).tolist() == pytest.approx([0.2, 0.6, 1.0])
    assert pt_weight(np.array([0.0, 0.5, 3.0])).tolist() == pytest.approx([0.0, 0.2, 1.0])


def test_hand_made_event(distance):
    weight = trackml_weights(PARTICLE, distance, PT)

    assert weight.sum() == pytest.approx(1.0)
    assert (weight[PARTICLE == 3] == 0).all()  # fewer than 4 hits
    assert (weight[PARTICLE == 0] == 0).all()
    nine = weight[PARTICLE == 7][np.argsort(distance[PARTICLE == 7])]
    assert nine[0] / nine[-1] == pytest.approx(10 / 6)
    assert (nine / nine[0] * 10).tolist() == pytest.approx(ORDER_TEMPLATE.tolist())
    # Five hits sit at every other point of the template; each track sums to its pT weight.
    five = weight[PARTICLE == 5][np.argsort(distance[PARTICLE == 5])]
    assert (five / five.sum()).tolist() == pytest.approx([10 / 28, 6 / 28, 3 / 28, 3 / 28,
                                                          6 / 28])
    assert five.sum() / nine.sum() == pytest.approx(0.6)


def test_long_tracks_use_the_twenty_hit_template():
    particle = np.full(25, 9)
    weight = trackml_weights(particle, np.arange(25.0), np.full(25, 2.0))
    assert (weight[20:] == 0).all()
    assert weight[:20] == pytest.approx(trackml_weights(particle[:20], np.arange(20.0),
                                                        np.full(20, 2.0)))


def test_nothing_weighted_gives_zeros():
    weight = trackml_weights(np.array([0, 0, 4, 4]), np.arange(4.0), np.ones(4))
    assert weight.tolist() == [0.0, 0.0, 0.0, 0.0]


def test_hit_order_does_not_matter(distance):
    permutation = np.random.default_rng(5).permutation(len(PARTICLE))
    weight = trackml_weights(PARTICLE, distance, PT)
    assert trackml_weights(PARTICLE[permutation], distance[permutation],
                           PT[permutation]) == pytest.approx(weight[permutation])


def _tables(distance: np.ndarray) -> tuple[pa.Table, pa.Table]:
    """Hits along z from vertices at z = 10 * particle_id, and the particles; particle 5
    is left out of the particles table."""
    n = len(PARTICLE)
    hits = pa.table({
        "hit_id": np.arange(1, n + 1), "x": np.zeros(n), "y": np.zeros(n), "z": np.zeros(n),
        "volume_id": np.ones(n), "layer_id": np.ones(n), "module_id": np.ones(n),
        "particle_id": PARTICLE, "tx": np.zeros(n), "ty": np.zeros(n),
        "tz": 10.0 * PARTICLE + distance, "tpx": np.zeros(n), "tpy": np.zeros(n),
        "tpz": np.zeros(n), "weight": np.zeros(n),
    })
    ids = np.array([7, 3])
    particles = pa.table({
        "particle_id": ids, "particle_type": [211, 211], "vx": [0.0, 0.0], "vy": [0.0, 0.0],
        "vz": 10.0 * ids, "px": [3.0, 1.0], "py": [4.0, 0.0], "pz": [1.0, 1.0],
        "q": [1, 1], "nhits": [9, 3],
    })
    return conform(hits, TRACKML_HITS, "hits"), conform(particles, TRACKML_PARTICLES, "parts")


def test_event_weights_from_tables(distance):
    hits, particles = _tables(distance)
    weight = event_weights(hits, particles)

    assert weight.dtype == np.float32
    pt = np.where(PARTICLE == 7, 5.0, 0.0)  # particle 5 is unknown: no weight
    expected = trackml_weights(PARTICLE, distance, pt)
    assert weight.tolist() == pytest.approx(expected.tolist(), rel=1e-6)
    assert (weight[PARTICLE == 5] == 0).all()
    assert event_weights(hits.to_pandas(), particles.to_pandas()) == pytest.approx(weight)


def test_event_weights_rejects_repeated_particles(distance):
    hits, particles = _tables(distance)
    with pytest.raises(InputError, match="particle_id 3 appears more than once"):
        event_weights(hits, pa.concat_tables([particles, particles]))
    with pytest.raises(InputError, match=r"particles table: missing column.*px"):
        event_weights(hits, pd.DataFrame({"particle_id": [7], "vx": [0.0], "vy": [0.0],
                                          "vz": [0.0], "py": [1.0]}))


def _reference_weights(particle: np.ndarray, distance: np.ndarray,
                       pt: np.ndarray) -> np.ndarray:
    """The library's recipe, one particle at a time."""
    weight = np.zeros(len(particle))
    for particle_id in set(particle.tolist()) - {0}:
        mine = np.flatnonzero(particle == particle_id)
        mine = mine[np.argsort(distance[mine], kind="stable")]
        if len(mine) < 4:
            continue
        n = min(len(mine), 20)
        order = np.interp(np.arange(n), np.arange(9) * (n - 1) / 8, ORDER_TEMPLATE)
        weight[mine[:n]] = order / order.sum() * np.interp(pt[mine[0]], [0.05, 0.5, 3.0],
                                                           [0.2, 0.2, 1.0], left=0.0)
    return weight / weight.sum()


def test_matches_a_particle_by_particle_reference():
    rng = np.random.default_rng(11)
    particle = rng.integers(0, 300, 4000)
    pt = rng.exponential(1.5, 300)[particle]
    distance = rng.uniform(0, 1000, len(particle))
    assert trackml_weights(particle, distance, pt) == pytest.approx(
        _reference_weights(particle, distance, pt), rel=1e-9, abs=1e-15)
