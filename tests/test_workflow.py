"""The whole data stage on the tiny config, through Snakemake, into a fresh directory."""

import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from hepclust.io.hls4ml import write_hls4ml
from hepclust.io.parquet import read_table
from hepclust.io.schema import JETS

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
               "-d", str(workdir), "--configfile", str(ROOT / ".test/config/config.yaml"),
               "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    result = snakemake(workdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir


@pytest.mark.workflow
def test_default_target_writes_both_samples_and_plots(run):
    data = run / "results" / "data"
    jets = pq.read_table(data / "jets.parquet")
    dijets = pq.read_table(data / "dijets.parquet")
    assert jets.num_rows == 60
    assert sorted(set(jets.column("label").to_pylist())) == [0, 1, 2]
    assert dijets.num_rows == 44
    assert sum(dijets.column("label").to_pylist()) == 4
    for plot in ("jet_mass.png", "mjj.png", "dijet_jets.png"):
        assert (data / "plots" / plot).stat().st_size > 10_000
    summary = json.loads((data / "summary.json").read_text())
    assert summary["dijets"]["signal_events"] == 4


@pytest.mark.workflow
def test_a_second_run_has_nothing_to_do(run):
    result = snakemake(run, "--dry-run")
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.workflow
def test_benchmark_target_writes_the_data_figures(run):
    result = snakemake(run, "bench")
    assert result.returncode == 0, result.stderr[-3000:]
    bench = json.loads((run / "results" / "bench" / "data.json").read_text())
    for key in ("jets_per_s_per_core", "dijets_per_s_per_core", "convert_rows_per_s"):
        assert bench[key] > 0


@pytest.mark.workflow
def test_report_shows_the_data_plots(run):
    report = run / "results" / "report.html"
    result = snakemake(run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    html = report.read_text()
    for plot in ("jet_mass.png", "mjj.png", "dijet_jets.png"):
        assert plot in html


@pytest.mark.workflow
def test_real_hls4ml_files_replace_the_generated_jets(run, tmp_path):
    generated = read_table(run / "results" / "data" / "jets.parquet", JETS)
    source = tmp_path / "jets_hls4ml.h5"
    write_hls4ml(source, generated)
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    config["jets"]["input"] = [str(source)]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(tmp_path / "config.yaml"), "--cores", "2",
         "results/data/jets.parquet"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "results/data/jets/converted/jets_hls4ml.parquet").is_file()
    assert not (tmp_path / "results/data/jets/shards").exists()
    converted = pq.read_table(tmp_path / "results/data/jets.parquet")
    assert sorted(converted.column("jet_mass").to_pylist()) == pytest.approx(
        sorted(generated.column("jet_mass").to_pylist()), rel=1e-5)
