"""Pixel and strip cells: digitisation of a track through a sensor, the cluster-shape
features, and TrackML's cells files."""

import gzip
import shutil

import numpy as np
import pyarrow as pa
import pytest

from hepclust.errors import InputError
from hepclust.generate import digitize
from hepclust.generate.fatras import Modules
from hepclust.io.trackml import read_trackml_cells, read_trackml_event
from hepclust.io.trackml_cells import CELL_FEATURES, PITCH_MM, THICKNESS_MM, cell_features

PITCH = PITCH_MM["pixel"][0]
THICKNESS = THICKNESS_MM["pixel"]


def one_pixel_module() -> Modules:
    """A 16.8 x 72 mm pixel module (volume 8) at the origin, its local axes the global ones."""
    return Modules(geometry_id=np.array([1], np.uint64), volume_id=np.array([8], np.int8),
                   layer_id=np.array([2], np.int8), module_id=np.array([1], np.int16),
                   center=np.zeros((1, 3)), rotation=np.eye(3)[None],
                   half_u=np.array([[8.4, 8.4]]), half_v=np.array([36.0]))


def cells_of_track(direction, at=(0.0123, 0.0234), threshold=0.1):
    """The cells of one straight track crossing the module at `at` along `direction`."""
    modules = one_pixel_module()
    position = np.array([[at[0], at[1], 0.0]])
    measured, cells = digitize.digitize(modules, np.array([0]), position,
                                        np.asarray([direction], float),
                                        np.random.default_rng(0), threshold)
    return measured, cells


def test_a_track_at_normal_incidence_fires_one_cell():
    measured, cells = cells_of_track((0.0, 0.0, 1.0))
    assert len(cells.value) == 1
    assert cells.value[0] == pytest.approx(1.0, abs=0.5)  # one MIP through the thickness
    # The cluster centre is the cell's centre: within half a pitch of the crossing.
    assert np.abs(measured[0, :2] - [0.0123, 0.0234]).max() <= PITCH / 2


@pytest.mark.parametrize("angle_degrees", [30, 60, 75])
def test_cluster_length_follows_the_incidence_angle_and_thickness(angle_degrees):
    angle = np.radians(angle_degrees)
    _, cells = cells_of_track((np.sin(angle), 0.0, np.cos(angle)), threshold=0.0)
    length = THICKNESS * np.tan(angle) / PITCH  # in cells, along u
    # A path of L cells fires floor(L) + 1 or + 2 cells, as it starts within a cell.
    assert np.floor(length) + 1 <= np.ptp(cells.ch0) + 1 <= np.floor(length) + 2
    assert np.ptp(cells.ch1) == 0  # no slope along v: one row
    features = cell_features(np.array([1]), np.array([8]), pa.table({
        "hit_id": np.ones(len(cells.ch0), np.int64), "ch0": cells.ch0, "ch1": cells.ch1,
        "value": cells.value}))
    theta = features["cell_theta_u"][0].as_py()
    # The angle read back from the cluster's length, to within one cell of it.
    assert np.tan(theta) * THICKNESS == pytest.approx(THICKNESS * np.tan(angle), abs=PITCH)
    assert 0 < theta < np.pi / 2
    # The charge grows with the path through the sensor: 1 / cos(angle).
    assert cells.value.sum() == pytest.approx(1 / np.cos(angle), rel=0.5)


def test_threshold_silences_small_cells_but_keeps_the_largest():
    _, all_cells = cells_of_track((0.7, 0.3, 0.3), threshold=0.0)
    _, fired = cells_of_track((0.7, 0.3, 0.3), threshold=0.3)
    assert len(fired.value) < len(all_cells.value)
    assert fired.value.min() >= 0.3 or len(fired.value) == 1


def test_cell_features_by_hand():
    cells = pa.table({"hit_id": [1, 1, 1, 3], "ch0": [10, 11, 12, 5], "ch1": [7, 7, 8, 2],
                      "value": [0.5, 0.25, 0.25, 1.0]})
    features = cell_features(np.array([1, 2, 3]), np.array([8, 8, 13]), cells)
    assert features.schema == CELL_FEATURES
    assert features["cell_count"].to_pylist() == [3, 0, 1]
    assert features["cell_value"].to_pylist() == [1.0, 0.0, 1.0]
    assert features["cell_extent_u"].to_numpy() == pytest.approx([0.15, 0.0, 0.08])
    assert features["cell_extent_v"].to_numpy() == pytest.approx([0.1, 0.0, 1.2])
    assert features["cell_theta_u"][0].as_py() == pytest.approx(np.arctan(0.10 / 0.15))
    assert features["cell_theta_v"][2].as_py() == 0.0  # one cell: normal incidence


def test_cells_of_unknown_hits_or_negative_charges_are_refused():
    with pytest.raises(InputError, match="absent from the hits file"):
        cell_features(np.array([1]), np.array([8]), pa.table(
            {"hit_id": [2], "ch0": [1], "ch1": [1], "value": [0.5]}), "cells.csv")
    with pytest.raises(InputError, match="negative"):
        cell_features(np.array([1]), np.array([8]), pa.table(
            {"hit_id": [1], "ch0": [1], "ch1": [1], "value": [-0.5]}), "cells.csv")


def write_event(directory, cells_text, gzipped=False):
    """A real-layout TrackML event (throughput phase) of three hits, two with cells."""
    files = {
        "hits": "hit_id,x,y,z,volume_id,layer_id,module_id\n"
                "1,-64.4099,-7.1637,-1502.5,7,2,1\n2,-55.3361,0.635342,-1502.5,7,2,1\n"
                "3,-83.8305,-1.14301,-1502.5,7,2,1\n",
        "truth": "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n"
                 "1,0,-64.4116,-7.16412,-1502.5,250710,-149908,-956385,0\n"
                 "2,22525763437723648,-55.3385,0.630805,-1502.5,-0.570605,0.0283904,-15.4922,"
                 "0.000100049\n3,0,-83.8282,-1.14558,-1502.5,626295,-169767,-760877,0\n",
        "particles": "particle_id,vx,vy,vz,px,py,pz,q,nhits\n"
                     "22525763437723648,-0.0121,-0.0123,0.7,-0.569,0.0304,-15.39,1,13\n",
        "cells": cells_text,
    }
    for part, text in files.items():
        path = directory / f"event000001000-{part}.csv"
        path.write_text(text)
        if gzipped:
            with path.open("rb") as raw, gzip.open(f"{path}.gz", "wb") as packed:
                shutil.copyfileobj(raw, packed)
            path.unlink()
    return directory / "event000001000"


@pytest.mark.parametrize("gzipped", [False, True])
def test_the_reader_gives_the_cells_features_of_a_real_layout_event(tmp_path, gzipped):
    prefix = write_event(tmp_path, "hit_id,ch0,ch1,value\n1,209,617,0.0138452\n"
                                   "1,210,617,0.0791127\n2,68,446,0.211629\n", gzipped)
    hits, _ = read_trackml_event(prefix)
    assert hits["cell_count"].to_pylist() == [2, 1, 0]
    assert hits["cell_extent_u"].to_numpy() == pytest.approx([0.1, 0.05, 0.0])
    assert read_trackml_cells(prefix).num_rows == 3


def test_an_event_without_cells_has_zero_features(tmp_path):
    prefix = write_event(tmp_path, "")
    (tmp_path / "event000001000-cells.csv").unlink()
    hits, _ = read_trackml_event(prefix)
    assert hits["cell_count"].to_pylist() == [0, 0, 0]
    assert read_trackml_cells(prefix) is None


def test_a_cells_file_naming_a_missing_hit_is_refused(tmp_path):
    prefix = write_event(tmp_path, "hit_id,ch0,ch1,value\n9,1,1,0.5\n")
    with pytest.raises(InputError, match=r"cells\.csv.*absent"):
        read_trackml_event(prefix)
