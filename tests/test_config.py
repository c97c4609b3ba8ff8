"""A wrong config key or value stops the workflow at start-up with a message naming it."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / ".test" / "config" / "config.yaml"


def dry_run(tmp_path, config):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(path), "--dry-run", "--quiet"],
        capture_output=True, text=True, check=False,
    )


def tiny():
    return yaml.safe_load(TINY.read_text())


def test_the_tiny_config_is_valid(tmp_path):
    result = dry_run(tmp_path, tiny())
    assert result.returncode == 0, result.stderr


def test_the_paper_config_is_valid_and_asks_for_gpus(tmp_path):
    paper = yaml.safe_load((ROOT / "workflow" / "configs" / "paper.yaml").read_text())
    assert paper["jet_clustering"]["batch_size"] == 1024
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(paper))
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
         "--configfile", str(path), "--dry-run", "results/jets/metrics.json"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "gpu=1" in result.stdout


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c["jets"]["generate"].update(jets_per_clas=3), "jets_per_clas"),
        (lambda c: c["jets"]["generate"].update(radius="wide"), "wide"),
        (lambda c: c.update(device="gpu0"), "gpu0"),
        (lambda c: c["dijets"]["generate"].update(signal_fraction=1.5), "1.5"),
        (lambda c: c["jets"]["generate"].update(pt_min=1300), "pt_min"),
        (lambda c: c["tracking"]["generate"].update(pt_max=0.1), "pt_min"),
        (lambda c: c["tracking"].update(subsample_fraction=0), "subsample_fraction"),
        (lambda c: c["tracking"]["generate"].update(density=5), "density"),
    ],
)
def test_a_wrong_key_or_value_is_named(tmp_path, change, named):
    config = tiny()
    change(config)
    result = dry_run(tmp_path, config)
    assert result.returncode != 0
    assert named in result.stderr + result.stdout
