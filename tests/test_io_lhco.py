import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from damage import assert_read_or_refused
from hepclust.errors import InputError
from hepclust.io.lhco import N_COLUMNS, iter_lhco, read_lhco
from hepclust.io.schema import DIJETS

LAYOUTS = ("fixed", "table")


def _rows(events: list[tuple[list[tuple[float, float, float]], int]]) -> np.ndarray:
    """The R&D file's rows: (pT, eta, phi) per particle interleaved, zero-padded, label."""
    rows = np.zeros((len(events), N_COLUMNS))
    for row, (particles, label) in enumerate(events):
        for slot, particle in enumerate(particles):
            rows[row, 3 * slot: 3 * slot + 3] = particle
        rows[row, -1] = label
    return rows


EVENTS = [
    ([(500.0, 0.0, 0.0), (500.0, 0.0, np.pi)], 1),  # two back-to-back massless jets
    ([(300.0, 0.1, 0.0), (200.0, -0.1, 0.1), (400.0, 0.0, 3.0)], 0),
    ([(100.0, 0.0, 0.0)], 0),  # a single jet: dropped
]


def _write(path, rows=None, layout="fixed", key="df"):
    frame = pd.DataFrame(_rows(EVENTS) if rows is None else rows)
    frame.to_hdf(path, key=key, mode="w", format=layout)
    return path


@pytest.mark.parametrize("layout", LAYOUTS)
def test_values_against_a_hand_computation(tmp_path, layout):
    dijets = read_lhco(_write(tmp_path / "events_anomalydetection.h5", layout=layout))

    assert dijets.schema.equals(DIJETS)
    assert dijets.num_rows == 2
    assert dijets["label"].to_pylist() == [1, 0]
    # Massless back to back: m_jj^2 = 2 pT1 pT2 (cosh d_eta - cos d_phi) = (1000 GeV)^2.
    assert dijets["mjj"][0].as_py() == pytest.approx(1000.0)
    # The heavier jet first: 300 and 200 GeV at d_eta 0.2, d_phi 0.1.
    mass = np.sqrt(2 * 300 * 200 * (np.cosh(0.2) - np.cos(0.1)))
    assert dijets["jet1_mass"][1].as_py() == pytest.approx(mass, rel=1e-5)
    assert dijets["jet2_pt"][1].as_py() == pytest.approx(400.0)
    assert dijets["part_pt"].to_pylist() == [[500.0, 500.0], [400.0, 300.0, 200.0]]
    assert dijets["part_phi"][1].as_py() == pytest.approx([3.0, 0.0, 0.1])


def test_layouts_agree_and_chunks_and_max_events(tmp_path):
    fixed = read_lhco(_write(tmp_path / "fixed.h5"))
    table_path = _write(tmp_path / "table.h5", layout="table")
    assert read_lhco(table_path).equals(fixed)
    assert pa.concat_tables(iter_lhco(table_path, max_events=2, chunk_size=1)).equals(fixed)
    assert read_lhco(table_path, max_events=1).equals(fixed.slice(0, 1))


def test_a_chunk_without_any_dijet(tmp_path):
    chunks = list(iter_lhco(_write(tmp_path / "events.h5"), chunk_size=1))
    assert [chunk.num_rows for chunk in chunks] == [1, 1, 0]


def test_columns_placed_by_name_across_dtype_blocks(tmp_path):
    """An integer label column lands in its own pandas block; it must still be the label."""
    frame = pd.DataFrame(_rows(EVENTS))
    frame[N_COLUMNS - 1] = frame[N_COLUMNS - 1].astype("int64")
    reference = read_lhco(_write(tmp_path / "float.h5"))
    for layout in LAYOUTS:
        path = tmp_path / f"mixed-{layout}.h5"
        frame.to_hdf(path, key="df", mode="w", format=layout)
        assert read_lhco(path).equals(reference)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(("rows", "problem"), [
    (_rows(EVENTS)[:, :-3], "has 2098 columns, expected 2101"),
    (np.where(np.arange(N_COLUMNS) == 4, np.nan, _rows(EVENTS)), "holds 3 NaN"),
    (np.where(np.arange(N_COLUMNS) == N_COLUMNS - 1, 2.0, _rows(EVENTS)), "other than 0 and 1"),
])
def test_malformed_frames_are_rejected(tmp_path, layout, rows, problem):
    path = _write(tmp_path / "bad.h5", rows=rows, layout=layout)
    with pytest.raises(InputError, match=problem) as error:
        read_lhco(path)
    assert "bad.h5" in str(error.value)


def test_no_frame_under_df(tmp_path):
    path = _write(tmp_path / "other_key.h5", key="events")
    with pytest.raises(InputError, match=r"other_key\.h5: has no pandas DataFrame"):
        read_lhco(path)


def test_mismatched_block_shape(tmp_path):
    path = _write(tmp_path / "cut_block.h5")
    with h5py.File(path, "a") as handle:
        values = handle["df/block0_values"][:, :100]
        del handle["df/block0_values"]
        handle["df/block0_values"] = values
    with pytest.raises(InputError, match=r"cut_block\.h5: 'df' block .* for 2101 columns"):
        read_lhco(path)


def test_zero_events(tmp_path):
    path = _write(tmp_path / "none.h5", rows=np.zeros((0, N_COLUMNS)))
    with pytest.raises(InputError, match=r"none\.h5: holds no events"):
        read_lhco(path)


def test_damaged_files(tmp_path, garbage_file, truncated_copy, empty_file):
    full = _write(tmp_path / "full.h5", rows=np.tile(_rows(EVENTS), (20, 1)))
    for path in (garbage_file(tmp_path / "garbage.h5"),
                 truncated_copy(full, tmp_path / "half.h5"), empty_file(tmp_path / "empty.h5"),
                 tmp_path / "absent.h5"):
        with pytest.raises(InputError, match=path.name):
            read_lhco(path)


def test_df_in_no_pandas_layout(tmp_path):
    with h5py.File(tmp_path / "not_pandas.h5", "w") as handle:
        handle["df/values"] = np.zeros((2, N_COLUMNS))
    with pytest.raises(InputError, match=r"not_pandas\.h5: 'df' is neither a pandas fixed"):
        read_lhco(tmp_path / "not_pandas.h5")


def test_values_stored_as_strings_are_named(tmp_path):
    path = _write(tmp_path / "strings.h5")
    with h5py.File(path, "a") as handle:
        values = handle["df/block0_values"][()]
        del handle["df/block0_values"]
        handle["df/block0_values"] = values.astype("S8")
    with pytest.raises(InputError, match=r"strings\.h5: 'df' block .*block0_values holds \|S8"):
        read_lhco(path)


def test_values_no_collision_gives_are_named(tmp_path):
    rows = _rows(EVENTS)
    rows[1, 1] = 1e12  # an eta
    with pytest.raises(InputError, match=r"eta\.h5: a particle has pT above 14000 GeV, \|eta\|"):
        read_lhco(_write(tmp_path / "eta.h5", rows=rows))


def test_damaged_pickled_column_labels_are_named(tmp_path):
    """A pickle of the table layout's column labels claiming 2^63 bytes: OverflowError."""
    path = _write(tmp_path / "pickle.h5", layout="table")
    with h5py.File(path, "a") as handle:
        handle["df"].attrs["non_index_axes"] = np.void(
            b"\x80\x04\x8e" + (2**63 + 5).to_bytes(8, "little"))
    with pytest.raises(InputError, match=r"pickle\.h5: 'df' table has unreadable column"):
        read_lhco(path)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_damaged_copies_give_dijets_or_an_input_error(tmp_path, layout):
    source = _write(tmp_path / "events_anomalydetection.h5", layout=layout)
    assert assert_read_or_refused(read_lhco, source, tmp_path / "damaged") > 0
