import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import skhep_testdata

from hepclust.cli import main
from hepclust.errors import InputError
from hepclust.io.formats import convert, detect_format, write_chunks
from hepclust.io.hls4ml import CONSTITUENT_FEATURES, write_hls4ml
from hepclust.io.parquet import read_table
from hepclust.io.schema import DIJETS, JETS, PARTICLES, TRACKML_HITS, TRACKML_PARTICLES

DELPHES = Path(skhep_testdata.data_path("uproot-issue513.root"))


def _jets(n_jets: int) -> pa.Table:
    """`n_jets` identical two-constituent top jets."""
    return pa.table({
        "jet_pt": np.full(n_jets, 50.0), "jet_eta": np.zeros(n_jets),
        "jet_phi": np.zeros(n_jets), "jet_mass": np.full(n_jets, 10.0),
        "jet_e": np.full(n_jets, 52.0), "n_constituents": np.full(n_jets, 2),
        "contained": pa.nulls(n_jets, pa.bool_()), "label": np.full(n_jets, 2),
        "part_pt": [[30.0, 20.0]] * n_jets, "part_eta": [[0.1, -0.1]] * n_jets,
        "part_phi": [[0.1, -0.1]] * n_jets, "part_e": [[31.0, 21.0]] * n_jets,
        "part_pid": [[0, 0]] * n_jets, "part_charge": [[0, 0]] * n_jets,
    }).cast(JETS)


@pytest.fixture
def hls4ml_file(tmp_path):
    path = tmp_path / "jetImage_0_100p_0_4.h5"
    write_hls4ml(path, _jets(4), max_constituents=3)
    return path


@pytest.fixture
def lhco_file(tmp_path):
    rows = np.zeros((2, 2101))
    rows[:, :6] = [500.0, 0.0, 0.0, 500.0, 0.0, np.pi]
    rows[:, -1] = [1, 0]
    path = tmp_path / "events_anomalydetection.h5"
    pd.DataFrame(rows).to_hdf(path, key="df", mode="w")
    return path


@pytest.fixture
def trackml_event(tmp_path):
    prefix = tmp_path / "train_1" / "event000000001"
    prefix.parent.mkdir()
    Path(f"{prefix}-hits.csv").write_text(
        "hit_id,x,y,z,volume_id,layer_id,module_id\n1,-64.4099,-7.1637,-1502.5,7,2,1\n")
    Path(f"{prefix}-truth.csv").write_text(
        "hit_id,particle_id,tx,ty,tz,tpx,tpy,tpz,weight\n"
        "1,4503668346847232,-64.4116,-7.16412,-1502.5,-0.0552689,0.323272,-0.203492,0.000012\n")
    Path(f"{prefix}-particles.csv").write_text(
        "particle_id,vx,vy,vz,px,py,pz,q,nhits\n"
        "4503668346847232,-0.00928816,0.00986098,-0.0778789,-0.0552689,0.323272,-0.203492,-1,1\n")
    return Path(f"{prefix}-truth.csv")


def test_detect_format(hls4ml_file, lhco_file, trackml_event, tmp_path, garbage_file):
    assert detect_format(hls4ml_file) == "hls4ml"
    assert detect_format(lhco_file) == "lhco"
    assert detect_format(trackml_event) == "trackml"
    assert detect_format(trackml_event.with_name("event000000001")) == "trackml"
    assert detect_format(DELPHES) == "delphes"
    with pytest.raises(InputError, match=r"garbage\.dat: unknown format; known: hls4ml, lhco"):
        detect_format(garbage_file(tmp_path / "garbage.dat"))
    with h5py.File(tmp_path / "other.h5", "w") as handle:
        handle["x"] = [1.0]
    with pytest.raises(InputError, match=r"other\.h5: an HDF5 file with neither"):
        detect_format(tmp_path / "other.h5")


def test_convert_every_format(hls4ml_file, lhco_file, trackml_event, tmp_path):
    assert convert(hls4ml_file, tmp_path / "jets.parquet").rows == 4
    assert read_table(tmp_path / "jets.parquet", JETS)["part_pt"][0].as_py() == [30.0, 20.0]
    assert convert(lhco_file, tmp_path / "dijets.parquet").rows == 2
    assert read_table(tmp_path / "dijets.parquet", DIJETS)["label"].to_pylist() == [1, 0]
    assert convert(DELPHES, tmp_path / "delphes.parquet", max_events=4).rows == 4
    assert read_table(tmp_path / "delphes.parquet", PARTICLES).num_rows == 4

    assert convert(trackml_event, tmp_path / "event1.parquet").rows == 1
    hits = read_table(tmp_path / "event1.parquet", TRACKML_HITS)
    particles = read_table(tmp_path / "event1-particles.parquet", TRACKML_PARTICLES)
    assert hits["particle_id"].to_pylist() == particles["particle_id"].to_pylist()


def test_cli_convert(hls4ml_file, tmp_path, capsys):
    output = tmp_path / "out" / "jets.parquet"
    assert main(["convert", str(hls4ml_file), str(output), "--max-events", "3"]) == 0
    assert read_table(output, JETS).num_rows == 3
    assert "wrote 3 rows" in capsys.readouterr().out


def test_cli_bad_input_exits_2_with_the_file_named(tmp_path, garbage_file, capsys):
    source = garbage_file(tmp_path / "garbage.h5")
    with pytest.raises(SystemExit) as exit_:
        main(["convert", str(source), str(tmp_path / "out.parquet"), "--format", "hls4ml"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("hepclust: error: ")
    assert "garbage.h5" in err
    assert "Traceback" not in err


def test_console_script_reports_without_traceback(tmp_path):
    result = subprocess.run(
        [Path(sys.executable).with_name("hepclust"), "convert", str(tmp_path / "absent.h5"),
         str(tmp_path / "out.parquet")], capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stderr == f"hepclust: error: {tmp_path / 'absent.h5'}: no such file\n"


def test_failed_conversion_keeps_the_old_output(tmp_path):
    """The NaN sits in the second chunk, after the first has been written out."""
    source = tmp_path / "nan.h5"
    write_hls4ml(source, _jets(2100), max_constituents=2)
    with h5py.File(source, "a") as handle:
        handle["jetConstituentList"][-1, 1, CONSTITUENT_FEATURES.index("j1_pt")] = np.nan
    output = tmp_path / "jets.parquet"
    output.write_bytes(b"an earlier result")

    with pytest.raises(InputError, match=r"nan\.h5: jetConstituentList holds"):
        convert(source, output)
    assert output.read_bytes() == b"an earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jets.parquet", "nan.h5"]


def test_failed_trackml_conversion_writes_neither_file(trackml_event, tmp_path):
    particles = trackml_event.with_name("event000000001-particles.csv")
    particles.write_text(particles.read_text().replace("-0.0552689", "nan"))
    with pytest.raises(InputError, match=r"event000000001-particles\.csv: column px has 1 NaN"):
        convert(trackml_event, tmp_path / "out" / "event1.parquet")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_no_rows_writes_nothing(tmp_path):
    with pytest.raises(InputError, match=r"source\.h5: gave no rows"):
        write_chunks([JETS.empty_table()], tmp_path / "jets.parquet", JETS, "source.h5")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture
def lhco_with_a_single_jet_event(tmp_path):
    rows = np.zeros((3, 2101))
    rows[:2, :6] = [500.0, 0.0, 0.0, 500.0, 0.0, np.pi]
    rows[2, :3] = [300.0, 0.0, 0.0]  # one jet only
    path = tmp_path / "events_anomalydetection.h5"
    pd.DataFrame(rows).to_hdf(path, key="df", mode="w")
    return path


def test_events_dropped_are_counted_with_their_reason(lhco_with_a_single_jet_event, tmp_path,
                                                       capsys):
    output = tmp_path / "dijets.parquet"
    conversion = convert(lhco_with_a_single_jet_event, output)
    reason = "fewer than two anti-kt R = 1 jets with pT > 20 GeV"
    assert conversion.as_dict() == {
        "source": str(lhco_with_a_single_jet_event), "output": str(output), "format": "lhco",
        "events_read": 3, "rows": 2, "dropped": {reason: 1}}
    assert main(["convert", str(lhco_with_a_single_jet_event), str(output)]) == 0
    assert capsys.readouterr().out == f"wrote 2 rows to {output}\ndropped 1 of 3 events: {reason}\n"


def test_stdout_carries_only_the_program_output(lhco_with_a_single_jet_event, tmp_path):
    """FastJet's banner (printed at its first clustering) stays off stdout."""
    output = tmp_path / "dijets.parquet"
    result = subprocess.run(
        [Path(sys.executable).with_name("hepclust"), "convert",
         str(lhco_with_a_single_jet_event), str(output)], capture_output=True, text=True,
        check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"wrote 2 rows to {output}",
        "dropped 1 of 3 events: fewer than two anti-kt R = 1 jets with pT > 20 GeV"]
    assert "FastJet" not in result.stderr


def _unwritable(tmp_path):
    """A place this process cannot write in: a read-only directory, or for root (whom
    permissions do not stop) a directory of /proc."""
    if os.geteuid() == 0:
        return Path("/proc/hepclust-absent/jets.parquet")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    return locked / "jets.parquet"


@pytest.mark.parametrize(("where", "problem"), [
    ("a_file/jets.parquet", "a_file is a file, not a directory"),
    ("a_file/deeper/jets.parquet", "a_file is a file, not a directory"),
    ("a_directory", "is a directory"),
    (None, "cannot be written"),
])
def test_an_output_path_that_cannot_be_written_exits_2_naming_it(hls4ml_file, tmp_path,
                                                                  capsys, where, problem):
    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "a_directory").mkdir()
    output = tmp_path / where if where else _unwritable(tmp_path)
    before = sorted(tmp_path.rglob("*"))
    with pytest.raises(SystemExit) as exit_:
        main(["convert", str(hls4ml_file), str(output)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"hepclust: error: {output}: ")
    assert problem in err
    assert sorted(tmp_path.rglob("*")) == before  # nothing partial left
    assert (tmp_path / "a_file").read_text() == "not a directory"


def test_a_trackml_event_whose_particles_cannot_be_written_writes_nothing(trackml_event,
                                                                         tmp_path):
    output = tmp_path / "out" / "event1.parquet"
    output.parent.mkdir()
    (tmp_path / "out" / "event1-particles.parquet").mkdir()
    with pytest.raises(InputError, match=r"event1-particles\.parquet: is a directory"):
        convert(trackml_event, output)
    assert not output.exists()
