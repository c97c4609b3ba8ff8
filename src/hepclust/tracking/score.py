"""The TrackML score and the usual tracking metrics of one event's reconstructed tracks.

A reconstructed track's *majority particle* is the particle most of its hits belong to
(ties go to the smallest particle_id; noise counts as particle 0), as in the Kaggle
scorer (trackml-library ``score_event``). A track and its majority particle *match*
(double majority) when the particle holds more than half of the track's hits and the
track holds more than half of the particle's hits in the truth.

Tables are pyarrow Tables or pandas DataFrames: the truth has hit_id, particle_id and
weight (and x, y, z for `metrics_by_bin`), the particles particle_id (and px, py, pz),
the submission hit_id and track_id, one row per hit of the truth.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hepclust.errors import InputError
from hepclust.tracking.tables import Table, columns

PT_EDGES = (0.0, 0.5, 1.0, 2.0, 5.0, np.inf)  # GeV
ETA_EDGES = tuple(np.linspace(-4.0, 4.0, 9))


@dataclass(frozen=True)
class Matching:
    """Each reconstructed track (in increasing track_id) with its majority particle."""

    track_id: np.ndarray
    nhits: np.ndarray  # hits of the track
    particle_id: np.ndarray  # its majority particle
    particle_nhits: np.ndarray  # that particle's hits in the truth
    major_nhits: np.ndarray  # that particle's hits in the track
    major_weight: np.ndarray  # their summed weight
    hit_track: np.ndarray  # index of each truth hit's track, in the truth's order

    @property
    def pure(self) -> np.ndarray:
        """Whether the majority particle holds more than half of the track's hits."""
        return 2 * self.major_nhits > self.nhits

    @property
    def matched(self) -> np.ndarray:
        """Whether the track and its majority particle match (double majority)."""
        return self.pure & (2 * self.major_nhits > self.particle_nhits)


def match_tracks(truth: Table, submission: Table,
                 source: str | Path = "submission") -> Matching:
    """Find each track's majority particle; `InputError` naming `source` unless the
    submission holds each hit of the truth exactly once."""
    hit_id, particle_id, weight = columns(truth, ["hit_id", "particle_id", "weight"], "truth")
    sub_hit_id, sub_track_id = columns(submission, ["hit_id", "track_id"], source)
    track_of_hit = _track_of_hit(hit_id, sub_hit_id, sub_track_id, source)

    track_id, hit_track = np.unique(track_of_hit, return_inverse=True)
    particles, hit_particle = np.unique(particle_id, return_inverse=True)
    pair, hit_pair, pair_nhits = np.unique(
        hit_track.astype(np.int64) * len(particles) + hit_particle,
        return_inverse=True, return_counts=True)
    pair_weight = np.bincount(hit_pair, weights=weight.astype(np.float64), minlength=len(pair))
    pair_track, pair_particle = np.divmod(pair, max(len(particles), 1))
    # The pairs of a track, largest first and among equals the smallest particle_id first.
    order = np.lexsort((pair_particle, -pair_nhits, pair_track))
    major = order[np.flatnonzero(np.diff(pair_track[order], prepend=-1))]
    return Matching(
        track_id=track_id,
        nhits=np.bincount(hit_track, minlength=len(track_id)),
        particle_id=particles[pair_particle[major]],
        particle_nhits=np.bincount(hit_particle)[pair_particle[major]],
        major_nhits=pair_nhits[major],
        major_weight=pair_weight[major],
        hit_track=hit_track,
    )


def _track_of_hit(hit_id: np.ndarray, sub_hit_id: np.ndarray, sub_track_id: np.ndarray,
                  source: str | Path) -> np.ndarray:
    """The submission's track_id of each truth hit, in the truth's order."""
    _check_unique(hit_id, "truth")
    order = np.argsort(sub_hit_id, kind="stable")
    sorted_ids = sub_hit_id[order]
    _check_unique(sorted_ids, source)
    unknown = ~np.isin(sorted_ids, hit_id)
    if unknown.any():
        raise InputError(source, f"has {int(unknown.sum())} row(s) for hits absent from the "
                                 f"event, e.g. hit_id {sorted_ids[unknown][0]}")
    if len(sorted_ids) != len(hit_id):
        absent = hit_id[~np.isin(hit_id, sorted_ids)]
        raise InputError(source, f"has no track for {len(absent)} hit(s) of the event, "
                                 f"e.g. hit_id {absent[0]}")
    return sub_track_id[order[np.searchsorted(sorted_ids, hit_id)]]


def _check_unique(ids: np.ndarray, source: str | Path) -> None:
    values = np.sort(ids)
    repeated = values[1:][values[1:] == values[:-1]]
    if repeated.size:
        raise InputError(source, f"hit_id {repeated[0]} appears more than once")


def score_event(truth: Table, submission: Table, source: str | Path = "submission") -> float:
    """The TrackML score: the weight of the hits of matched (track, majority particle)
    pairs that belong to that particle, over the event's total weight."""
    (weight,) = columns(truth, ["weight"], "truth")
    total = weight.sum(dtype=np.float64)
    if not total > 0:
        raise InputError("truth", "weights sum to zero: nothing to score")
    matching = match_tracks(truth, submission, source)
    return float(matching.major_weight[matching.matched].sum() / total)


@dataclass(frozen=True)
class _Outcome:
    """The target particles and the considered tracks, with what happened to each."""

    matching: Matching
    targets: np.ndarray  # particle ids
    found: np.ndarray  # per target: matched by some track
    considered: np.ndarray  # per track: has at least min_track_hits hits
    fake: np.ndarray  # per track
    good: np.ndarray  # per track: considered, pure and of a real particle
    duplicate: np.ndarray  # per track: good, but not its particle's first good track


def _outcome(truth: Table, particles: Table, submission: Table, min_hits: int,
             min_track_hits: int, source: str | Path) -> _Outcome:
    matching = match_tracks(truth, submission, source)
    (hit_particle,) = columns(truth, ["particle_id"], "truth")
    (particle_id,) = columns(particles, ["particle_id"], "particles")
    ids, nhits = np.unique(hit_particle, return_counts=True)
    candidates = np.unique(particle_id[particle_id != 0])
    targets = np.intersect1d(candidates, ids[nhits >= min_hits])
    real = matching.particle_id != 0
    found = np.isin(targets, matching.particle_id[matching.matched & real])

    considered = matching.nhits >= min_track_hits
    good = considered & matching.pure & real
    fake = considered & ~good
    good_index = np.flatnonzero(good)
    _, first = np.unique(matching.particle_id[good_index], return_index=True)
    duplicate = good.copy()
    duplicate[good_index[first]] = False
    return _Outcome(matching, targets, found, considered, fake, good, duplicate)


def _rate(count: float, total: float) -> float | None:
    return float(count / total) if total else None


def tracking_metrics(truth: Table, particles: Table, submission: Table, min_hits: int = 4,
                     min_track_hits: int = 3, source: str | Path = "submission") -> dict:
    """The score and the usual tracking metrics of one event:

    * efficiency: the fraction of target particles matched by a track, the targets being
      the particles of `particles` (particle_id != 0) with at least `min_hits` hits in the
      truth (pass a selection of the particles to measure the efficiency on it);
    * fake rate: the fraction of tracks with at least `min_track_hits` hits whose majority
      particle holds no more than half of the track, or is noise;
    * duplicate rate: among those tracks whose majority is a particle holding more than
      half of the track, the fraction that are extra tracks of a particle: the sum over
      particles of (k - 1) over the sum of k, for a particle with k such tracks.

    * score_pt_above_1gev: the score counted on the hits of particles above 1 GeV only
      (their matched weight over their total weight), as tracking papers quote it;
      efficiency_pt_above_1gev: the efficiency on those particles.

    Rates are None where nothing is counted; the score is None if no hit has weight.
    """
    outcome = _outcome(truth, particles, submission, min_hits, min_track_hits, source)
    (weight, hit_particle) = columns(truth, ["weight", "particle_id"], "truth")
    total = weight.sum(dtype=np.float64)
    matching = outcome.matching
    score = float(matching.major_weight[matching.matched].sum() / total) if total > 0 else None
    particle_id, px, py = columns(particles, ["particle_id", "px", "py"], "particles")
    stiff = particle_id[np.hypot(px, py) > 1.0]
    stiff_weight = weight[np.isin(hit_particle, stiff)].sum(dtype=np.float64)
    stiff_matched = matching.matched & np.isin(matching.particle_id, stiff)
    stiff_targets = np.isin(outcome.targets, stiff)
    counts = {
        "hits": len(matching.hit_track),
        "particles": len(outcome.targets),
        "matched_particles": int(outcome.found.sum()),
        "tracks": int(outcome.considered.sum()),
        "fake_tracks": int(outcome.fake.sum()),
        "pure_tracks": int(outcome.good.sum()),
        "duplicate_tracks": int(outcome.duplicate.sum()),
    }
    return {
        "score": score,
        "efficiency": _rate(counts["matched_particles"], counts["particles"]),
        "fake_rate": _rate(counts["fake_tracks"], counts["tracks"]),
        "duplicate_rate": _rate(counts["duplicate_tracks"], counts["pure_tracks"]),
        "score_pt_above_1gev": _rate(matching.major_weight[stiff_matched].sum(), stiff_weight),
        "efficiency_pt_above_1gev": _rate(outcome.found[stiff_targets].sum(),
                                          stiff_targets.sum()),
        **counts,
        "min_hits": min_hits,
        "min_track_hits": min_track_hits,
    }


def metrics_by_bin(truth: Table, particles: Table, submission: Table,
                   pt_edges: tuple[float, ...] = PT_EDGES,
                   eta_edges: tuple[float, ...] = ETA_EDGES, min_hits: int = 4,
                   min_track_hits: int = 3, source: str | Path = "submission") -> dict:
    """Efficiency, fake rate and duplicate rate (as in `tracking_metrics`) in bins
    ``[low, high)`` of pT (GeV) and of pseudorapidity.

    The efficiency is binned by the target particle's truth momentum; fake and duplicate
    rates by the track's majority particle, or, for a track whose majority is noise (or
    a particle missing from `particles`), by the mean pseudorapidity of its hits'
    positions, such tracks being left out of the pT bins. Returns ``{"pt": ..., "eta":
    ...}``, each with the bin ``edges`` (None for an infinite one), the counts
    (``particles``, ``tracks``, ``pure_tracks``) and the rates (None in an empty bin).
    """
    outcome = _outcome(truth, particles, submission, min_hits, min_track_hits, source)
    matching = outcome.matching
    particle_id, px, py, pz = columns(particles, ["particle_id", "px", "py", "pz"],
                                      "particles")
    x, y, z = columns(truth, ["x", "y", "z"], "truth")
    target_pt, target_eta = _kinematics(outcome.targets, particle_id, px, py, pz)
    track_pt, track_eta = _kinematics(matching.particle_id, particle_id, px, py, pz)
    hit_eta = _eta(np.hypot(x, y), z)
    mean_eta = (np.bincount(matching.hit_track, weights=hit_eta, minlength=len(track_pt))
                / np.maximum(matching.nhits, 1))
    unknown = np.isnan(track_pt)
    track_eta[unknown] = mean_eta[unknown]
    return {axis: _binned(edges, target, track, outcome)
            for axis, edges, target, track in (("pt", pt_edges, target_pt, track_pt),
                                               ("eta", eta_edges, target_eta, track_eta))}


def _eta(pt: np.ndarray, pz: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.arcsinh(pz / pt)


def _kinematics(ids: np.ndarray, particle_id: np.ndarray, px: np.ndarray, py: np.ndarray,
                pz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pT, eta) of the particles `ids`, NaN for those not in the table."""
    order = np.argsort(particle_id, kind="stable")
    slot = np.minimum(np.searchsorted(particle_id[order], ids), max(len(order) - 1, 0))
    row = order[slot] if len(order) else slot
    found = particle_id[row] == ids if len(order) else np.zeros(len(ids), dtype=bool)
    pt = np.where(found, np.hypot(px[row], py[row]).astype(np.float64), np.nan)
    return pt, np.where(found, _eta(pt, pz[row].astype(np.float64)), np.nan)


def _binned(edges: tuple[float, ...], target: np.ndarray, track: np.ndarray,
            outcome: _Outcome) -> dict:
    edges_array = np.asarray(edges, dtype=np.float64)
    if len(edges_array) < 2 or not (np.diff(edges_array) > 0).all():
        raise ValueError(f"bin edges must increase, at least two of them: {list(edges)}")
    nbins = len(edges_array) - 1

    def count(values: np.ndarray, selected: np.ndarray) -> np.ndarray:
        index = np.searchsorted(edges_array, values, side="right") - 1
        inside = selected & (index >= 0) & (index < nbins)
        return np.bincount(index[inside], minlength=nbins)

    everyone = np.ones(len(target), dtype=bool)
    particles, found = count(target, everyone), count(target, outcome.found)
    tracks, fake = count(track, outcome.considered), count(track, outcome.fake)
    pure, duplicate = count(track, outcome.good), count(track, outcome.duplicate)
    return {
        "edges": [float(e) if np.isfinite(e) else None for e in edges_array],
        "particles": particles.tolist(),
        "efficiency": [_rate(*pair) for pair in zip(found, particles, strict=True)],
        "tracks": tracks.tolist(),
        "fake_rate": [_rate(*pair) for pair in zip(fake, tracks, strict=True)],
        "pure_tracks": pure.tolist(),
        "duplicate_rate": [_rate(*pair) for pair in zip(duplicate, pure, strict=True)],
    }
