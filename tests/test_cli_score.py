import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hepclust.cli import main
from hepclust.io.formats import convert
from hepclust.io.parquet import conform
from hepclust.io.schema import TRACKML_HITS, TRACKML_PARTICLES
from hepclust.io.trackml import write_trackml_csv
from hepclust.tracking.weights import event_weights

# Particles 1..5 with 4 to 8 hits, then 3 noise hits.
PARTICLE = np.repeat([1, 2, 3, 4, 5, 0], [4, 5, 6, 7, 8, 3])
PERFECT = ["efficiency: 1.000000 (5 of 5 particles with at least 4 hits)",
           "fake rate: 0.166667 (1 of 6 tracks with at least 3 hits)",
           "duplicate rate: 0.000000 (0 of 5 tracks with a majority particle)"]


def _tables() -> tuple[pa.Table, pa.Table]:
    """Hits moving out along x from the origin, weighted as TrackML weighs them."""
    n = len(PARTICLE)
    step = np.arange(n, dtype=float)
    hits = pa.table({
        "hit_id": np.arange(1, n + 1), "x": step, "y": np.ones(n), "z": np.zeros(n),
        "volume_id": np.full(n, 8), "layer_id": np.full(n, 2), "module_id": np.arange(n),
        "particle_id": PARTICLE, "tx": step, "ty": np.ones(n), "tz": np.zeros(n),
        "tpx": np.ones(n), "tpy": np.zeros(n), "tpz": np.zeros(n), "weight": np.zeros(n),
    })
    ids = np.arange(1, 6)
    particles = conform(pa.table({
        "particle_id": ids, "particle_type": np.full(5, 211), "vx": np.zeros(5),
        "vy": np.zeros(5), "vz": np.zeros(5), "px": np.linspace(0.3, 4.0, 5),
        "py": np.zeros(5), "pz": np.ones(5), "q": np.ones(5), "nhits": [4, 5, 6, 7, 8],
    }), TRACKML_PARTICLES, "particles")
    hits = conform(hits, TRACKML_HITS, "hits")
    weight = pa.array(event_weights(hits, particles))
    return hits.set_column(hits.schema.get_field_index("weight"), "weight", weight), particles


@pytest.fixture
def event(tmp_path) -> Path:
    """The event as TrackML CSV files; returns its truth file."""
    prefix = write_trackml_csv(*_tables(), tmp_path / "train", 1000)
    return Path(f"{prefix}-truth.csv")


def _write_submission(path: Path, track_id: np.ndarray, events: tuple[int, ...] = ()) -> Path:
    """One event's tracks, under each of `events` (no event_id column if none)."""
    hit_id = np.arange(1, len(track_id) + 1)
    lines = ["hit_id,track_id"] + [f"{h},{t}" for h, t in zip(hit_id, track_id, strict=True)]
    if events:
        lines = ["event_id," + lines[0]] + [f"{e},{line}" for e in events for line in lines[1:]]
    path.write_text("\n".join(lines) + "\n")
    return path


def _run(capsys, *argv) -> list[str]:
    assert main(["score", *map(str, argv)]) == 0
    return capsys.readouterr().out.splitlines()


def test_scores_a_trackml_event(event, tmp_path, capsys):
    # Noise sits in a track of its own; the second event's rows are passed over.
    track = np.where(PARTICLE == 0, 9, PARTICLE)
    submission = _write_submission(tmp_path / "sub.csv", track, events=(1000, 1001))
    assert _run(capsys, submission, event) == ["score: 1.000000", *PERFECT]

    # Particle 3 scattered over tracks of one hit: its weight is lost.
    track[PARTICLE == 3] = 100 + np.arange(6)
    submission = _write_submission(tmp_path / "sub.csv", track, events=(1000,))
    weight = _tables()[0]["weight"].to_numpy().astype(np.float64)
    lost = weight[PARTICLE == 3].sum() / weight.sum()
    assert _run(capsys, submission, event.with_name("event000001000"))[:2] == [
        f"score: {1 - lost:.6f}", "efficiency: 0.800000 (4 of 5 particles with at least 4 hits)"]
    assert 0.05 < lost < 0.5


def test_scores_a_converted_parquet_event(event, tmp_path, capsys):
    output = tmp_path / "event.parquet"
    convert(event, output)
    submission = _write_submission(tmp_path / "sub.csv", np.where(PARTICLE == 0, 9, PARTICLE))
    assert _run(capsys, submission, output) == ["score: 1.000000", *PERFECT]

    (tmp_path / "event-particles.parquet").unlink()
    assert _run(capsys, submission, output) == ["score: 1.000000"]


@pytest.mark.parametrize(("make", "named", "problem"), [
    (lambda path: _write_submission(path, PARTICLE[:-1]), "sub.csv",
     "has no track for 1 hit"),
    (lambda path: _write_submission(path, PARTICLE, events=(1001,)), "sub.csv",
     "has no rows for event 1000"),
    (lambda path: path.write_text("hit_id,track\n1,2\n"), "sub.csv",
     "missing column.*track_id"),
    (lambda path: path.write_text("hit_id,track_id\n1,x\n"), "sub.csv", "not a readable"),
    (lambda path: None, "sub.csv", "no such file"),
])
def test_bad_submissions_exit_2_with_the_file_named(event, tmp_path, capsys, make, named,
                                                    problem):
    make(tmp_path / "sub.csv")
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(tmp_path / "sub.csv"), str(event)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hepclust: error: {tmp_path / named}: ")
    assert re.search(problem, err)
    assert "Traceback" not in err


def test_several_events_need_a_named_event(event, tmp_path, capsys):
    output = tmp_path / "event.parquet"
    convert(event, output)
    submission = _write_submission(tmp_path / "sub.csv", PARTICLE, events=(1000, 1001))
    with pytest.raises(SystemExit, match="2"):
        main(["score", str(submission), str(output)])
    assert "sub.csv: holds 2 events" in capsys.readouterr().err
    with pytest.raises(SystemExit, match="2"):
        main(["score", str(submission), str(tmp_path / "event000000007-hits.csv")])
    assert "event000000007-hits.csv: no such file" in capsys.readouterr().err


def test_an_event_parquet_with_nan_exits_2_naming_it(event, tmp_path, capsys):
    hits, _ = _tables()
    x = hits["x"].to_numpy().copy()
    x[2] = np.nan
    pq.write_table(hits.set_column(hits.schema.get_field_index("x"), "x",
                                   pa.array(x, pa.float32())), tmp_path / "nan.parquet")
    submission = _write_submission(tmp_path / "sub.csv", PARTICLE)
    with pytest.raises(SystemExit) as exit_:
        main(["score", str(submission), str(tmp_path / "nan.parquet")])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (f"hepclust: error: {tmp_path / 'nan.parquet'}: column x "
                                       "has 1 NaN or infinite value(s)\n")
