import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from hepclust.errors import InputError
from hepclust.io.parquet import conform
from hepclust.io.schema import TRACKML_EVENT_HITS, TRACKML_HITS, TRACKML_PARTICLES
from hepclust.tracking.subsample import subsample_event, subsample_events


def _event(seed: int, n_particles: int = 200, n_noise: int = 300) -> tuple[pa.Table, pa.Table]:
    """Particles 1000, 1001, ... with 3 to 12 hits each, and noise, shuffled; random weights."""
    rng = np.random.default_rng(seed)
    ids = np.arange(1000, 1000 + n_particles)
    nhits = rng.integers(3, 13, n_particles)
    particle = rng.permutation(np.concatenate([np.repeat(ids, nhits), np.zeros(n_noise, int)]))
    n = len(particle)
    zeros = np.zeros(n)
    weight = rng.random(n) * (particle != 0)
    hits = pa.table({
        "hit_id": np.arange(1, n + 1), "x": rng.normal(size=n), "y": zeros, "z": zeros,
        "volume_id": np.ones(n), "layer_id": np.ones(n), "module_id": np.ones(n),
        "particle_id": particle, "tx": zeros, "ty": zeros, "tz": zeros, "tpx": zeros,
        "tpy": zeros, "tpz": zeros, "weight": weight / weight.sum(),
    })
    k = n_particles
    particles = pa.table({
        "particle_id": ids, "particle_type": np.full(k, 13), "vx": np.zeros(k),
        "vy": np.zeros(k), "vz": np.zeros(k), "px": rng.normal(size=k), "py": np.zeros(k),
        "pz": np.zeros(k), "q": np.ones(k), "nhits": nhits,
    })
    return conform(hits, TRACKML_HITS, "hits"), conform(particles, TRACKML_PARTICLES, "parts")


def _hit_counts(hits: pa.Table) -> dict[int, int]:
    ids, counts = np.unique(hits["particle_id"].to_numpy(), return_counts=True)
    return dict(zip(ids.tolist(), counts.tolist(), strict=True))


def test_keeps_whole_particles_and_a_share_of_noise():
    hits, particles = _event(0)
    kept_hits, kept_particles = subsample_event(hits, particles, 0.1,
                                                np.random.default_rng(1))

    assert kept_hits.schema.equals(hits.schema)
    assert kept_particles.schema.equals(particles.schema)
    assert kept_particles.num_rows == 20
    counts, original = _hit_counts(kept_hits), _hit_counts(hits)
    assert counts.pop(0) == 30
    assert sorted(counts) == sorted(kept_particles["particle_id"].to_pylist())
    assert all(counts[p] == original[p] for p in counts)
    hit_id = kept_hits["hit_id"].to_numpy()
    assert (np.diff(hit_id) > 0).all()  # rows keep their order
    # Weights: renormalised, in the same proportions.
    weight = kept_hits["weight"].to_numpy()
    assert weight.sum(dtype=np.float64) == pytest.approx(1.0, rel=1e-6)
    before = hits["weight"].to_numpy()[hit_id - 1]
    real = kept_hits["particle_id"].to_numpy() != 0
    assert weight[real] / before[real] == pytest.approx(np.full(real.sum(), 1 / before.sum()),
                                                        rel=1e-5)


def test_reproducible_with_a_seeded_generator():
    hits, particles = _event(2)
    first = subsample_event(hits, particles, 0.3, np.random.default_rng(7))
    again = subsample_event(hits, particles, 0.3, np.random.default_rng(7))
    other = subsample_event(hits, particles, 0.3, np.random.default_rng(8))
    assert first[0].equals(again[0])
    assert first[1].equals(again[1])
    assert not first[1].equals(other[1])
    assert first[1].num_rows == other[1].num_rows == 60


def test_fraction_one_keeps_everything():
    hits, particles = _event(3)
    kept_hits, kept_particles = subsample_event(hits, particles, 1.0, np.random.default_rng(0))
    assert kept_particles.equals(particles)
    assert kept_hits.drop_columns("weight").equals(hits.drop_columns("weight"))
    assert kept_hits["weight"].to_numpy() == pytest.approx(hits["weight"].to_numpy(), rel=1e-6)


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_fraction_outside_zero_one_is_rejected(fraction):
    hits, particles = _event(0, n_particles=5, n_noise=2)
    with pytest.raises(ValueError, match=r"fraction must be in \(0, 1\]"):
        subsample_event(hits, particles, fraction, np.random.default_rng(0))


def _with_event(table: pa.Table, event_id: int) -> pa.Table:
    return table.append_column("event_id", pa.array(np.full(table.num_rows, event_id)))


def test_many_events_are_thinned_one_by_one():
    """Both events use the same particle ids; each keeps its own share of them."""
    events = [_event(4, n_particles=100), _event(5, n_particles=50)]
    hits = pa.concat_tables([_with_event(events[0][0], 11), _with_event(events[1][0], 12)])
    particles = pa.concat_tables([_with_event(events[0][1], 11), _with_event(events[1][1], 12)])
    kept_hits, kept_particles = subsample_events(hits, particles, 0.2,
                                                 np.random.default_rng(0))

    assert kept_hits.schema.equals(TRACKML_EVENT_HITS)
    for event_id, n_particles in ((11, 20), (12, 10)):
        mine = kept_hits.filter(pc.equal(kept_hits["event_id"], event_id))
        chosen = kept_particles.filter(pc.equal(kept_particles["event_id"], event_id))
        assert chosen.num_rows == n_particles
        assert mine["weight"].to_numpy().sum(dtype=np.float64) == pytest.approx(1.0, rel=1e-6)
        counts = _hit_counts(mine)
        assert counts.pop(0) == 60
        assert sorted(counts) == sorted(chosen["particle_id"].to_pylist())
        original = _hit_counts(hits.filter(pc.equal(hits["event_id"], event_id)))
        assert all(counts[p] == original[p] for p in counts)

    with pytest.raises(InputError, match=r"hits table: missing column.*event_id"):
        subsample_events(events[0][0], particles, 0.2, np.random.default_rng(0))


def test_the_share_is_rounded_to_the_nearest_count():
    hits, particles = _event(6, n_particles=14, n_noise=17)
    kept_hits, kept_particles = subsample_event(hits, particles, 0.1, np.random.default_rng(0))
    assert kept_particles.num_rows == 1  # 1.4
    assert _hit_counts(kept_hits)[0] == 2  # 1.7
