import json
from collections import Counter

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from hepclust.errors import InputError
from hepclust.tracking.score import match_tracks, metrics_by_bin, score_event, tracking_metrics


def _truth(particle_id: list[int], weight: list[float] | None = None) -> pa.Table:
    """Hits 1..n of the given particles, weighing 1 each (noise 0) unless told."""
    particle_id = np.asarray(particle_id)
    if weight is None:
        weight = (particle_id != 0).astype(float)
    return pa.table({"hit_id": np.arange(1, len(particle_id) + 1), "particle_id": particle_id,
                     "weight": np.asarray(weight, dtype=np.float32)})


def _submission(track_id: list[int]) -> pa.Table:
    return pa.table({"hit_id": np.arange(1, len(track_id) + 1), "track_id": track_id})


def test_perfect_reconstruction_scores_one():
    particle = [1, 1, 1, 1, 2, 2, 2, 2, 2, 0, 0]
    assert score_event(_truth(particle), _submission(particle)) == 1.0
    # Noise spread over tracks of its own changes nothing.
    assert score_event(_truth(particle), _submission([*particle[:9], 7, 8])) == 1.0


def test_a_track_split_in_halves_counts_for_nothing():
    truth = _truth([1, 1, 1, 1, 2, 2, 2, 2], [1, 1, 1, 1, 2, 2, 2, 2])
    assert score_event(truth, _submission([10, 10, 11, 11, 20, 20, 20, 20])) == pytest.approx(
        8 / 12)


def test_the_larger_part_of_a_split_track_counts():
    truth = _truth([1, 1, 1, 1, 1], [1, 2, 3, 4, 5])
    assert score_event(truth, _submission([10, 10, 10, 11, 11])) == pytest.approx(6 / 15)
    assert score_event(truth, _submission([10, 11, 11, 11, 11])) == pytest.approx(14 / 15)


def test_merged_tracks():
    truth = _truth([1] * 6 + [2] * 4)
    # The track is 60% particle 1, which it holds whole: particle 1 counts, 2 is lost.
    assert score_event(truth, _submission([5] * 10)) == pytest.approx(0.6)
    # Two equal particles in one track: neither holds more than half of it.
    assert score_event(_truth([1] * 4 + [2] * 4), _submission([5] * 8)) == 0.0


def test_noise_hits_in_a_track():
    particle = [1] * 5 + [0] * 5
    # Two stolen noise hits leave particle 1 the majority; five take it away.
    assert score_event(_truth(particle), _submission([5] * 7 + [6, 7, 8])) == 1.0
    assert score_event(_truth(particle), _submission([5] * 10)) == 0.0


def test_missing_hit_of_a_particle_still_counts():
    # A track with 3 of particle 1's 4 hits (the fourth in its own track) scores 3 hits.
    truth = _truth([1, 1, 1, 1], [0.1, 0.2, 0.3, 0.4])
    assert score_event(truth, _submission([5, 5, 5, 6])) == pytest.approx(0.6)


@pytest.mark.parametrize("particle", [[7, 7, 3, 3, 9], [3, 3, 7, 7, 9], [7, 3, 7, 3, 9]])
def test_ties_go_to_the_smallest_particle_id(particle):
    matching = match_tracks(_truth(particle), _submission([4, 4, 4, 4, 5]))
    assert matching.track_id.tolist() == [4, 5]
    assert matching.particle_id.tolist() == [3, 9]
    assert matching.major_nhits.tolist() == [2, 1]
    assert matching.particle_nhits.tolist() == [2, 1]
    assert matching.matched.tolist() == [False, True]


def test_pandas_and_arrow_tables_agree():
    truth, submission = _truth([1, 1, 1, 2, 2, 0]), _submission([1, 1, 2, 2, 2, 3])
    assert score_event(truth.to_pandas(), submission.to_pandas()) == pytest.approx(
        score_event(truth, submission)) == pytest.approx(4 / 5)


@pytest.mark.parametrize(("hit_id", "problem"), [
    ([1, 2, 2, 3], "hit_id 2 appears more than once"),
    ([1, 2], "has no track for 1 hit.*hit_id 3"),
    ([1, 2, 3, 9], "has 1 row.*absent from the event, e.g. hit_id 9"),
])
def test_malformed_submissions_are_rejected(hit_id, problem):
    submission = pa.table({"hit_id": hit_id, "track_id": np.zeros(len(hit_id), dtype=int)})
    with pytest.raises(InputError, match=f"sub.csv: {problem}"):
        score_event(_truth([1, 1, 1]), submission, source="sub.csv")


def test_unweighted_truth_cannot_be_scored():
    with pytest.raises(InputError, match="weights sum to zero"):
        score_event(_truth([0, 0, 0]), _submission([1, 1, 1]))
    with pytest.raises(InputError, match=r"submission: missing column.*track_id"):
        score_event(_truth([1, 1]), pa.table({"hit_id": [1, 2]}))


def _reference_score(truth: pd.DataFrame, submission: pd.DataFrame) -> float:
    """The score straight from its definition, one track at a time."""
    particle_of = dict(zip(truth.hit_id, truth.particle_id, strict=True))
    weight_of = dict(zip(truth.hit_id, truth.weight.astype(float), strict=True))
    particle_hits = Counter(truth.particle_id)
    score = 0.0
    for _, track in submission.groupby("track_id"):
        counts = Counter(particle_of[h] for h in track.hit_id)
        most = max(counts.values())
        major = min(p for p, n in counts.items() if n == most)
        if 2 * most > len(track) and 2 * most > particle_hits[major]:
            score += sum(weight_of[h] for h in track.hit_id if particle_of[h] == major)
    return score / sum(weight_of.values())


def _random_event(rng: np.random.Generator, n_hits: int = 3000, n_particles: int = 300):
    """A truth and an imperfect submission: tracks split, merged and given noise."""
    particle = np.where(rng.random(n_hits) < 0.1, 0, rng.integers(1, n_particles, n_hits))
    particle = particle * 1000 + 7  # large, unordered ids
    particle[particle == 7] = 0
    truth = pd.DataFrame({"hit_id": rng.permutation(n_hits) + 100, "particle_id": particle,
                          "weight": rng.random(n_hits).astype(np.float32) * (particle != 0)})
    track = particle.copy()
    split = rng.random(n_hits) < 0.2
    track[split] += 1
    merge = rng.random(n_hits) < 0.1
    track[merge] = 1000 * rng.integers(1, n_particles, merge.sum()) + 7
    noise = particle == 0
    track[noise] = np.where(rng.random(noise.sum()) < 0.5, 1000 * rng.integers(
        1, n_particles, noise.sum()) + 7, -rng.integers(1, 10**6, noise.sum()))
    order = rng.permutation(n_hits)
    submission = pd.DataFrame({"hit_id": truth.hit_id.to_numpy()[order],
                               "track_id": track[order]})
    return truth, submission


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_agrees_with_a_slow_reference(seed):
    truth, submission = _random_event(np.random.default_rng(seed))
    score = score_event(truth, submission)
    assert 0.2 < score < 0.9
    assert score == pytest.approx(_reference_score(truth, submission), rel=1e-9)


# Tracks 10..17 over particles 1..5 (4 has 3 hits, too few to be a target) and noise.
METRICS_PARTICLE = [1] * 5 + [1] * 3 + [2, 2, 0, 0] + [3, 3, 3, 2] + [4, 4, 4, 2] \
    + [3, 3, 0, 0] + [5, 5] + [5, 5]
METRICS_TRACK = [10] * 5 + [11] * 3 + [12] * 4 + [13] * 4 + [14] * 4 + [15] * 4 + [16] * 2 \
    + [17] * 2


def _particles(ids: list[int], pt: list[float] | None = None,
               eta: list[float] | None = None) -> pa.Table:
    pt = np.ones(len(ids)) if pt is None else np.asarray(pt)
    eta = np.zeros(len(ids)) if eta is None else np.asarray(eta)
    return pa.table({"particle_id": ids, "px": pt, "py": np.zeros(len(ids)),
                     "pz": pt * np.sinh(eta)})


def test_efficiency_fake_and_duplicate_rates():
    truth, submission = _truth(METRICS_PARTICLE), _submission(METRICS_TRACK)
    metrics = tracking_metrics(truth, _particles([1, 2, 3, 4, 5, 6]), submission)

    # Found: 1 (track 10) and 3 (track 13); not 2, nor 5 (split in halves).
    assert metrics["particles"] == 4
    assert metrics["efficiency"] == 0.5
    # Tracks of 3+ hits: 10, 11, 12, 13, 14, 15; fakes: 12 and 15 (noise ties win).
    assert metrics["tracks"] == 6
    assert metrics["fake_rate"] == pytest.approx(2 / 6)
    # Pure: 10, 11, 13, 14; 11 repeats particle 1.
    assert metrics["pure_tracks"] == 4
    assert metrics["duplicate_rate"] == 0.25
    # Scored: track 10's 5 hits, track 13's 3 and track 14's 3 of 24 weighted hits.
    assert metrics["score"] == pytest.approx(11 / 24)

    short = tracking_metrics(truth, _particles([1, 2, 3, 4, 5]), submission, min_track_hits=2)
    assert (short["tracks"], short["fake_tracks"], short["duplicate_tracks"]) == (8, 2, 2)
    # A selection of particles is a selection of targets.
    assert tracking_metrics(truth, _particles([1, 2, 5]), submission)["efficiency"] == 1 / 3
    assert tracking_metrics(truth, _particles([1, 2, 3]), submission,
                            min_hits=6)["particles"] == 1


def test_metrics_by_bin():
    """1 (4 hits) and 2 (7 hits, two tracks) found; 3 and 4 share a fake track; noise
    hits at eta 3.5 make a fake track of their own."""
    particle = [1] * 4 + [2] * 7 + [3, 3, 4, 4] + [3, 3] + [4, 4] + [0] * 3
    track = [1] * 4 + [2] * 4 + [3] * 3 + [4] * 4 + [5] * 2 + [6] * 2 + [7] * 3
    eta = np.where(np.asarray(particle) == 0, 3.5, -0.5)
    truth = _truth(particle).append_column("x", [np.full(len(particle), 100.0)]).append_column(
        "y", [np.zeros(len(particle))]).append_column("z", [100.0 * np.sinh(eta)])
    particles = _particles([1, 2, 3, 4], pt=[0.7, 0.7, 3.0, 10.0], eta=[0.5, 0.5, -2.5, 2.5])

    binned = metrics_by_bin(truth, particles, _submission(track))

    pt, eta = binned["pt"], binned["eta"]
    assert pt["edges"] == [0.0, 0.5, 1.0, 2.0, 5.0, None]
    assert pt["particles"] == [0, 2, 0, 1, 1]
    assert pt["efficiency"] == [None, 1.0, None, 0.0, 0.0]
    assert pt["tracks"] == [0, 3, 0, 1, 0]  # the noise track has no pT
    assert pt["fake_rate"] == [None, 0.0, None, 1.0, None]
    assert pt["duplicate_rate"] == [None, pytest.approx(1 / 3), None, None, None]
    assert eta["edges"] == [-4.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0]
    assert eta["particles"] == [0, 1, 0, 0, 2, 0, 1, 0]
    assert eta["efficiency"] == [None, 0.0, None, None, 1.0, None, 0.0, None]
    assert eta["tracks"] == [0, 1, 0, 0, 3, 0, 0, 1]
    assert eta["fake_rate"] == [None, 1.0, None, None, 0.0, None, None, 1.0]
    assert eta["pure_tracks"] == [0, 0, 0, 0, 3, 0, 0, 0]
    json.dumps(binned, allow_nan=False)

    coarse = metrics_by_bin(truth, particles, _submission(track), pt_edges=(0.0, 5.0),
                            eta_edges=(-1.0, 1.0))
    assert coarse["pt"]["efficiency"] == [pytest.approx(2 / 3)]
    assert coarse["eta"]["tracks"] == [3]
    with pytest.raises(ValueError, match="bin edges must increase"):
        metrics_by_bin(truth, particles, _submission(track), pt_edges=(1.0, 0.0))


def test_score_and_efficiency_above_1_gev_count_only_stiff_particles():
    truth = _truth([1, 1, 1, 1, 2, 2, 2, 2], [1, 1, 1, 1, 3, 3, 3, 3])
    particles = _particles([1, 2], pt=[0.5, 2.0])
    # Particle 2 (2 GeV) found whole, particle 1 (0.5 GeV) split in halves.
    result = tracking_metrics(truth, particles, _submission([5, 5, 6, 6, 7, 7, 7, 7]))
    assert result["score"] == pytest.approx(12 / 16)
    assert result["score_pt_above_1gev"] == pytest.approx(1.0)
    assert result["efficiency_pt_above_1gev"] == 1.0
    assert result["efficiency"] == 0.5
    lost = tracking_metrics(truth, particles, _submission([5, 5, 5, 5, 6, 6, 7, 7]))
    assert lost["score_pt_above_1gev"] == 0.0
    assert lost["efficiency_pt_above_1gev"] == 0.0
