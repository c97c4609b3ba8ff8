import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from damage import assert_read_or_refused
from hepclust.errors import InputError
from hepclust.io.parquet import merge_shuffled, read_table, write_table
from hepclust.io.schema import DIJETS, JETS, TRACKML_PARTICLES


def particles_table(n=3, **overrides):
    columns = {
        "particle_id": np.arange(1, n + 1), "particle_type": np.full(n, 211),
        "vx": np.zeros(n), "vy": np.zeros(n), "vz": np.linspace(-1, 1, n),
        "px": np.ones(n), "py": np.ones(n), "pz": np.ones(n), "q": np.ones(n, int),
        "nhits": np.full(n, 10),
    }
    return pa.table({**columns, **overrides})


def test_write_then_read_round_trips_with_the_schema_types(tmp_path):
    path = tmp_path / "p.parquet"
    write_table(particles_table(), path, TRACKML_PARTICLES)
    table = read_table(path, TRACKML_PARTICLES)
    assert table.schema.equals(TRACKML_PARTICLES)
    assert table.column("vz").to_pylist() == [-1.0, 0.0, 1.0]


def test_nan_is_refused_and_names_the_source(tmp_path):
    bad = particles_table(px=np.array([1.0, np.nan, 2.0]))
    with pytest.raises(InputError, match=r"input\.csv: column px has 1 NaN"):
        write_table(bad, tmp_path / "p.parquet", TRACKML_PARTICLES, source="input.csv")
    assert not list(tmp_path.iterdir())


def test_a_failed_write_keeps_the_existing_file(tmp_path):
    path = tmp_path / "p.parquet"
    write_table(particles_table(), path, TRACKML_PARTICLES)
    before = path.read_bytes()
    with pytest.raises(InputError, match="missing column"):
        write_table(particles_table().drop_columns(["q"]), path, TRACKML_PARTICLES)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["p.parquet"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "not a readable Parquet file"), (b"PAR1 garbage", "not a readable Parquet file")],
)
def test_unreadable_files_are_named(tmp_path, content, message):
    path = tmp_path / "broken.parquet"
    path.write_bytes(content)
    with pytest.raises(InputError, match=rf"broken\.parquet: {message}"):
        read_table(path, JETS)


def test_truncated_file_is_named(tmp_path):
    path = tmp_path / "whole.parquet"
    write_table(particles_table(100), path, TRACKML_PARTICLES)
    cut = tmp_path / "cut.parquet"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cut\.parquet: not a readable Parquet file"):
        read_table(cut, TRACKML_PARTICLES)


def test_contract_names_missing_and_mistyped_columns(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(particles_table().drop_columns(["nhits"]), path)
    with pytest.raises(InputError, match=r"t\.parquet: missing column.*nhits"):
        read_table(path, TRACKML_PARTICLES)
    pq.write_table(particles_table(), path)  # float64 where float32 is expected
    with pytest.raises(InputError, match=r"t\.parquet: wrong column type.*vx is double"):
        read_table(path, TRACKML_PARTICLES)


def test_empty_table_and_missing_file_are_errors(tmp_path):
    path = tmp_path / "empty.parquet"
    pq.write_table(pa.table({f.name: pa.array([], f.type) for f in DIJETS}), path)
    with pytest.raises(InputError, match=r"empty\.parquet: holds no rows"):
        read_table(path, DIJETS)
    with pytest.raises(InputError, match=r"absent\.parquet: no such file"):
        read_table(tmp_path / "absent.parquet")


def test_merge_shuffles_reproducibly(tmp_path):
    paths = []
    for i in range(2):
        paths.append(tmp_path / f"{i}.parquet")
        write_table(particles_table(50, particle_id=np.arange(50) + 100 * i), paths[-1],
                    TRACKML_PARTICLES)
    first = merge_shuffled(paths, TRACKML_PARTICLES, seed=1).column("particle_id").to_pylist()
    again = merge_shuffled(paths, TRACKML_PARTICLES, seed=1).column("particle_id").to_pylist()
    assert first == again
    assert sorted(first) == [*range(50), *range(100, 150)]
    assert first != sorted(first)


@pytest.mark.parametrize("column", ["vz", "px"])
def test_reading_refuses_nan_and_infinity(tmp_path, column):
    path = tmp_path / "nan.parquet"
    table = particles_table(**{column: np.array([0.0, np.nan, np.inf])})
    pq.write_table(table.cast(TRACKML_PARTICLES), path)  # what write_table would refuse
    with pytest.raises(InputError, match=rf"nan\.parquet: column {column} has 2 NaN"):
        read_table(path, TRACKML_PARTICLES)


def test_reading_refuses_nan_in_a_particle_list(tmp_path, toy_jets):
    path = tmp_path / "nan.parquet"
    lists = toy_jets["part_eta"].to_pylist()
    lists[3][1] = float("nan")
    pq.write_table(toy_jets.set_column(toy_jets.schema.get_field_index("part_eta"), "part_eta",
                                       pa.array(lists, pa.list_(pa.float32()))), path)
    with pytest.raises(InputError, match=r"nan\.parquet: column part_eta has 1 NaN"):
        read_table(path, JETS)


def test_damaged_copies_give_a_table_or_an_input_error(tmp_path, toy_jets):
    source = tmp_path / "jets.parquet"
    write_table(toy_jets.slice(0, 8), source, JETS)
    assert assert_read_or_refused(lambda path: read_table(path, JETS), source,
                                  tmp_path / "damaged") > 0
