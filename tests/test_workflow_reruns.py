"""Partial reruns: a changed parameter, input or script reruns its stage and everything
downstream of it, and nothing upstream (Snakemake's own rerun triggers)."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / ".test/config/config.yaml"
TARGET = "results/jets/metrics.json"
UPSTREAM = {"generate_jets", "merge_jets", "prepare_jet_clustering", "pretrain_jets",
            "train_supervised_jets"}

pytestmark = pytest.mark.workflow


def snakemake(workflow: Path, workdir: Path, configfile: Path, *args: str):
    command = [sys.executable, "-m", "snakemake", "-s", str(workflow / "Snakefile"), "-d",
               str(workdir), "--configfile", str(configfile), "--cores", "2", *args]
    return subprocess.run(command, capture_output=True, text=True, check=False)


def planned_rules(workflow: Path, workdir: Path, configfile: Path = TINY) -> set[str]:
    """The rules a run would execute now, from a dry run."""
    result = snakemake(workflow, workdir, configfile, "--dry-run", TARGET)
    assert result.returncode == 0, result.stderr[-3000:]
    return set(re.findall(r"^(?:local)?rule (\w+):", result.stdout, flags=re.M))


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    """The workflow's own files in a scratch directory, so a test may edit a script."""
    copy = tmp_path_factory.mktemp("workflow")
    shutil.copy(ROOT / "Snakefile", copy / "Snakefile")
    shutil.copytree(ROOT / "workflow", copy / "workflow")
    (copy / "src").symlink_to(ROOT / "src")
    (copy / "envs").symlink_to(ROOT / "envs")
    return copy


@pytest.fixture(scope="module")
def finished(workflow_copy, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("run")
    result = snakemake(workflow_copy, workdir, TINY, TARGET)
    assert result.returncode == 0, result.stderr[-3000:]
    assert planned_rules(workflow_copy, workdir) == set()
    return workdir


def test_a_changed_parameter_reruns_its_stage_and_downstream_only(workflow_copy, finished,
                                                                  tmp_path):
    config = yaml.safe_load(TINY.read_text())
    config["jet_clustering"]["cluster_epochs"] += 1
    changed = tmp_path / "config.yaml"
    changed.write_text(yaml.safe_dump(config, sort_keys=False))
    planned = planned_rules(workflow_copy, finished, changed)
    assert {"train_ucluster_jets", "evaluate_jets", "jet_clustering_metrics"} <= planned
    assert not planned & UPSTREAM


def test_a_changed_script_reruns_its_stage_and_downstream_only(workflow_copy, finished):
    script = workflow_copy / "workflow/scripts/evaluate_jets.py"
    original = script.read_text()
    script.write_text(original + "\n# changed\n")
    try:
        planned = planned_rules(workflow_copy, finished)
    finally:
        script.write_text(original)
    assert {"evaluate_jets", "jet_clustering_metrics"} <= planned
    assert not planned & (UPSTREAM | {"train_ucluster_jets"})


def test_a_changed_input_reruns_what_reads_it_and_nothing_upstream(workflow_copy, finished):
    seed = yaml.safe_load(TINY.read_text())["seed"] * 100
    pretrained = finished / f"results/jets/seed{seed}/pretrained.pt"
    content, saved = pretrained.read_bytes(), pretrained.stat()
    pretrained.write_bytes(content + b"\0")  # new content and a newer time, as a rerun makes
    try:
        planned = planned_rules(workflow_copy, finished)
    finally:
        pretrained.write_bytes(content)
        os.utime(pretrained, ns=(saved.st_atime_ns, saved.st_mtime_ns))
    assert {"train_ucluster_jets", "evaluate_jets", "jet_clustering_metrics"} <= planned
    assert not planned & UPSTREAM
