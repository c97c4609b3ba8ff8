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


def dry_run_targets(tmp_path, configfiles, *targets):
    """A dry run of `targets` with the jobs listed (not --quiet): their resources show."""
    return subprocess.run(
        [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d", str(tmp_path),
         "--configfile", *map(str, configfiles), "--dry-run", *targets],
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
    result = dry_run_targets(tmp_path, [path], "results/jets/metrics.json")
    assert result.returncode == 0, result.stderr
    assert "gpu=1" in result.stdout


def test_the_paper_config_runs_the_anomaly_search_at_the_paper_scale(tmp_path):
    paper = yaml.safe_load((ROOT / "workflow" / "configs" / "paper.yaml").read_text())
    anomaly = paper["anomaly"]
    assert (anomaly["train_events"], anomaly["test_events"], anomaly["eval_events"]) == (
        300_000, 150_000, 300_000)
    assert (anomaly["max_particles"], anomaly["batch_size"], anomaly["seeds"]) == (100, 1024, 5)
    generated = paper["dijets"]["generate"]["background_events"] / (
        1 - paper["dijets"]["generate"]["signal_fraction"])
    assert generated >= 750_000
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(paper))
    result = dry_run_targets(tmp_path, [path], "results/anomaly/metrics.json")
    assert result.returncode == 0, result.stderr
    assert "gpu=1" in result.stdout
    assert "train_ucluster_anomaly" in result.stdout


def test_the_full_density_overlay_is_valid_and_asks_for_gpus(tmp_path):
    configs = ROOT / "workflow" / "configs"
    full = yaml.safe_load((configs / "full.yaml").read_text())
    assert full["tracking"]["generate"]["density"] == 1.0
    result = dry_run_targets(tmp_path, [configs / "paper.yaml", configs / "full.yaml"],
                             "results/tracking/metrics.json")
    assert result.returncode == 0, result.stderr
    assert "train_tracking_gnn" in result.stdout
    assert "gpu=1" in result.stdout


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c["jets"]["generate"].update(jets_per_clas=3), "jets_per_clas"),
        (lambda c: c["jets"]["generate"].update(radius="wide"), "wide"),
        (lambda c: c.update(device="gpu0"), "gpu0"),
        (lambda c: c["dijets"]["generate"].update(signal_fraction=1.5), "1.5"),
        (lambda c: c["jets"]["generate"].update(pt_min=1300), "pt_min"),
        (lambda c: c["tracking"]["generate"].update(source="gun", pt_min=200), "pt_min"),
        (lambda c: c["tracking"]["generate"].update(source="beam"), "beam"),
        (lambda c: c["tracking"]["generate"].update(pileup=0, hard_process="none"),
         "no interaction"),
        (lambda c: c["tracking"]["generate"]["noise_fraction"].update(pixel=1.0), "1.0"),
        (lambda c: c["tracking"].update(subsample_fraction=0), "subsample_fraction"),
        (lambda c: c["tracking"]["generate"].update(density=5), "density"),
        (lambda c: c["tracking_clustering"]["gnn"].update(aggr="max"), "max"),
        (lambda c: c["tracking_clustering"]["hierarchical"].update(initial="tracks"), "tracks"),
        (lambda c: c["tracking_clustering"]["refinement"].update(threshold=1.5), "1.5"),
        (lambda c: c["tracking_clustering"]["graph"].update(neighbours=3), "neighbours"),
        (lambda c: c["tracking_clustering"]["graph"].update(k=None, radius=None), "k, radius"),
        (lambda c: c["tracking_clustering"].update(test_events=5), "test_events"),
        (lambda c: c["anomaly"].update(scan_clusters=7), "scan_clusters"),
        (lambda c: c["anomaly"].update(scan_train_events=[16]), "scan_train_events"),
        (lambda c: c["anomaly"].update(mjj_low=7000), "mjj_low"),
        (lambda c: c["anomaly"].update(clusters=[1, 3]), "clusters"),
        (lambda c: c["anomaly"].update(mjj_high=14000), "mjj_high"),
        (lambda c: c["jet_clustering"].update(classes=["W", "H"]), "H"),
        (lambda c: c["jet_clustering"].update(classes=["W"]), "W"),
        (lambda c: c["jet_clustering"].update(classes=["W", "Z", "q"]), "jets.input"),
    ],
)
def test_a_wrong_key_or_value_is_named(tmp_path, change, named):
    config = tiny()
    change(config)
    result = dry_run(tmp_path, config)
    assert result.returncode != 0
    assert named in result.stderr + result.stdout


def test_the_jet_classes_default_to_w_z_top():
    from snakemake.utils import validate

    config = tiny()
    del config["jet_clustering"]["classes"]
    validate(config, str(ROOT / "workflow" / "schemas" / "config.schema.yaml"))
    assert config["jet_clustering"]["classes"] == ["W", "Z", "top"]
