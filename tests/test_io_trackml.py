import gzip

import numpy as np
import pyarrow as pa
import pytest

from damage import assert_read_or_refused
from hepclust.errors import InputError
from hepclust.io.schema import TRACKML_HITS, TRACKML_PARTICLES
from hepclust.io.trackml import event_prefix, read_trackml_event, write_trackml_csv
from hepclust.io.trackml_cells import CELL_FEATURES

# Rows in the style of the real files; the truth file lists the hits in another order.
HITS = """hit_id,x,y,z,volume_id,layer_id,module_id
1,-64.4099,-7.1637,-1502.5,7,2,1
2,-55.3361,0.635342,-1502.5,7,2,1
3,-83.8305,-1.14301,-1502.5,7,2,1
"""
TRUTH = """hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight
2,22525763437723648,-55.3385,0.630805,-1502.5,-0.570605,0.0283904,-15.4922,1.00049e-05
1,0,-64.4116,-7.16412,-1502.5,250710,-149908,-956385,0
3,4503668346847232,-83.8284,-1.14558,-1502.5,-0.0552689,0.323272,-0.203492,0.000012
"""
PARTICLES = """particle_id,particle_type,vx,vy,vz,px,py,pz,q,nhits
4503668346847232,-211,-0.00928816,0.00986098,-0.0778789,-0.0552689,0.323272,-0.203492,-1,8
22525763437723648,11,-0.00928816,0.00986098,-0.0778789,-0.570605,0.0283904,-15.4922,-1,2
"""
EVENT = "event000001000"


def _event(directory, hits=HITS, truth=TRUTH, particles=PARTICLES, gz=False):
    """Write one event's three files into `directory`; returns the hits file."""
    directory.mkdir(parents=True, exist_ok=True)
    for part, text in (("hits", hits), ("truth", truth), ("particles", particles)):
        if text is None:
            continue
        path = directory / f"{EVENT}-{part}.csv{'.gz' if gz else ''}"
        path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    return directory / f"{EVENT}-hits.csv{'.gz' if gz else ''}"


def test_values_are_exact(tmp_path):
    hits, particles = read_trackml_event(_event(tmp_path))

    # Without a cells file, the cell features are there, as zeros.
    assert hits.schema.equals(pa.schema([*TRACKML_HITS, *CELL_FEATURES]))
    assert hits["cell_count"].to_pylist() == [0] * hits.num_rows
    assert particles.schema.equals(TRACKML_PARTICLES)
    assert hits["hit_id"].to_pylist() == [1, 2, 3]
    assert hits["x"].to_numpy().tolist() == np.float32([-64.4099, -55.3361, -83.8305]).tolist()
    assert hits["particle_id"].to_pylist() == [0, 22525763437723648, 4503668346847232]
    assert hits["weight"].to_numpy()[1] == np.float32("1.00049e-05")
    assert hits["tpz"].to_pylist()[0] == -956385.0
    assert particles["particle_type"].to_pylist() == [-211, 11]
    assert particles["nhits"].to_pylist() == [8, 2]


@pytest.mark.parametrize("name", [f"{EVENT}-hits.csv", f"{EVENT}-truth.csv",
                                  f"{EVENT}-particles.csv", f"{EVENT}-cells.csv", EVENT])
def test_any_file_of_the_event_names_it(tmp_path, name):
    _event(tmp_path)
    assert event_prefix(tmp_path / name) == tmp_path / EVENT
    assert read_trackml_event(tmp_path / name)[0].num_rows == 3


def test_gzipped_and_kaggle_layout(tmp_path):
    kaggle = "\n".join(",".join(f for i, f in enumerate(line.split(",")) if i != 1)
                       for line in PARTICLES.splitlines())
    hits, particles = read_trackml_event(_event(tmp_path, particles=kaggle, gz=True))
    assert hits.num_rows == 3
    assert particles["particle_type"].to_pylist() == [0, 0]
    assert particles["px"].to_pylist() == pytest.approx([-0.0552689, -0.570605])


def test_csv_round_trip_is_lossless(tmp_path):
    hits, particles = read_trackml_event(_event(tmp_path / "in"))
    prefix = write_trackml_csv(hits, particles, tmp_path / "out", 1000)

    assert prefix == tmp_path / "out" / EVENT
    again_hits, again_particles = read_trackml_event(prefix)
    assert again_hits.equals(hits)
    assert again_particles.equals(particles)
    assert (tmp_path / "out" / f"{EVENT}-hits.csv").read_text() == HITS
    header = (tmp_path / "out" / f"{EVENT}-truth.csv").read_text().splitlines()[0]
    assert header == TRUTH.splitlines()[0]


def test_float32_text_round_trip_over_many_values(tmp_path):
    rng = np.random.default_rng(1)
    hits, particles = read_trackml_event(_event(tmp_path))
    n = 2000
    values = rng.standard_normal(n).astype(np.float32) * np.float32(10.0) ** rng.integers(
        -8, 8, n).astype(np.float32)
    many = hits.take(np.zeros(n, dtype=int)).set_column(
        1, "x", [values]).set_column(0, "hit_id", [np.arange(1, n + 1)])
    prefix = write_trackml_csv(many, particles, tmp_path / "many", 7)
    assert read_trackml_event(prefix)[0]["x"].to_numpy().tolist() == values.tolist()


@pytest.mark.parametrize(("files", "bad_file", "problem"), [
    ({"particles": None}, "particles.csv", "no such file"),
    ({"truth": TRUTH.replace(",tz,", ",z,")}, "truth.csv", "missing column.*tz"),
    ({"hits": HITS.replace("-7.1637", "nan")}, "hits.csv", "column y has 1 NaN"),
    ({"hits": HITS + "3,1.0,1.0,1.0,7,2,1\n"}, "hits.csv", "hit_id 3 appears more than once"),
    ({"particles": PARTICLES + PARTICLES.splitlines()[1] + "\n"}, "particles.csv",
     "particle_id 4503668346847232 appears more than once"),
    ({"truth": TRUTH.replace("\n3,", "\n4,")}, "truth.csv", "no row for 1 hit.*hit_id 3"),
    ({"hits": HITS.rsplit("\n", 2)[0] + "\n"}, "truth.csv", "1 row.*absent from"),
    ({"hits": HITS.replace(",7,2,1\n3", ",700,2,1\n3")}, "hits.csv", "not a readable"),
    ({"hits": HITS.splitlines()[0] + "\n"}, "hits.csv", "holds no rows"),
    ({"truth": TRUTH.replace(",1.00049e-05", ",-1.00049e-05")}, "truth.csv",
     "weight is negative for 1 hit.*hit_id 2"),
    ({"particles": PARTICLES.rsplit("\n", 2)[0] + "\n"}, "truth.csv",
     "1 hit.*absent from event000001000-particles.csv.*particle_id 22525763437723648"),
])
def test_malformed_events_are_rejected(tmp_path, files, bad_file, problem):
    path = _event(tmp_path, **files)
    with pytest.raises(InputError, match=problem) as error:
        read_trackml_event(path)
    assert f"{EVENT}-{bad_file}" in str(error.value)


@pytest.mark.parametrize("part", ["hits", "truth", "particles"])
def test_damaged_files(tmp_path, garbage_file, truncated_copy, empty_file, part):
    name = f"{EVENT}-{part}.csv"
    full = _event(tmp_path / "full").with_name(name)
    damage = {"garbage": garbage_file, "empty": empty_file,
              "truncated": lambda path: truncated_copy(full, path)}
    for kind, make in damage.items():
        directory = tmp_path / kind
        _event(directory)
        make(directory / name)
        with pytest.raises(InputError, match=name):
            read_trackml_event(directory / name)


@pytest.mark.parametrize("part", ["hits", "truth", "particles"])
def test_damaged_copies_give_an_event_or_an_input_error(tmp_path, part):
    source = _event(tmp_path / "source").with_name(f"{EVENT}-{part}.csv")
    event = _event(tmp_path / "event").with_name(source.name)

    def read(damaged):  # the damaged file in place of its part of the event
        event.write_bytes(damaged.read_bytes())
        read_trackml_event(event)

    assert assert_read_or_refused(read, source, tmp_path / "damaged") > 0


def test_a_header_that_is_not_utf8_is_named(tmp_path):
    hits = _event(tmp_path)
    truth = hits.with_name(f"{EVENT}-truth.csv")
    truth.write_bytes(truth.read_bytes().replace(b"tpx", b"t\xb2x", 1))
    with pytest.raises(InputError, match=rf"{EVENT}-truth\.csv: not a readable TrackML CSV"):
        read_trackml_event(hits)
