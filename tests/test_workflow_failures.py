"""What a user sees when things go wrong mid-run: a killed training resumes from its last
checkpoint, and a corrupt input fails its stage by name without leaving partial output."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / ".test/config/config.yaml"
SEED = yaml.safe_load(TINY.read_text())["seed"]
PRETRAINED = f"results/jets/seed{SEED * 100}/pretrained.pt"
CHECKPOINT = f"results/jets/seed{SEED * 100}/checkpoints/pretrain/last.pt"

pytestmark = pytest.mark.workflow


def snakemake_command(workdir: Path, configfile: Path, *targets: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"), "-d",
            str(workdir), "--configfile", str(configfile), "--cores", "1",
            "--rerun-incomplete", *targets]


def long_pretraining_config(tmp_path: Path) -> Path:
    config = yaml.safe_load(TINY.read_text())
    config["jet_clustering"]["pretrain_epochs"] = 60
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wait_for(path: Path, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, "the run ended before writing a checkpoint"
        assert time.monotonic() < deadline, f"no {path} after {seconds} s"
        time.sleep(0.05)


def test_a_killed_training_resumes_from_its_last_checkpoint(tmp_path):
    workdir, config = tmp_path / "run", long_pretraining_config(tmp_path)
    run = subprocess.Popen(snakemake_command(workdir, config, PRETRAINED),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        wait_for(workdir / CHECKPOINT, run, seconds=240)
    finally:
        os.killpg(run.pid, signal.SIGKILL)  # the whole job tree, as a node failure would
        run.wait()
    assert not (workdir / PRETRAINED).exists(), "the training finished before the kill"
    prepared = workdir / "results/jets/data/train.npz"
    prepared_at = prepared.stat().st_mtime_ns

    # A killed Snakemake leaves its lock behind; --unlock is the documented way out.
    subprocess.run([*snakemake_command(workdir, config), "--unlock"], capture_output=True,
                   check=True)
    rerun = subprocess.run(snakemake_command(workdir, config, PRETRAINED),
                           capture_output=True, text=True, check=False)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    log = (workdir / f"results/logs/jets/pretrain_{SEED * 100}.log").read_text()
    resumed = [line for line in log.splitlines() if "resumed from" in line]
    assert len(resumed) == 1
    assert "after epoch 60" not in resumed[0]
    assert prepared.stat().st_mtime_ns == prepared_at  # the finished stage did not rerun
    assert (workdir / PRETRAINED).is_file()


def test_a_corrupt_input_fails_its_stage_by_name_and_leaves_no_partial_output(tmp_path):
    workdir = tmp_path / "run"
    jets = workdir / "results/data/jets.parquet"
    first = subprocess.run(snakemake_command(workdir, TINY, str(jets.relative_to(workdir))),
                           capture_output=True, text=True, check=False)
    assert first.returncode == 0, first.stderr[-3000:]
    jets.write_bytes(jets.read_bytes()[: jets.stat().st_size // 2])  # truncated, and newer

    failed = subprocess.run(snakemake_command(workdir, TINY, "results/jets/data/train.npz"),
                            capture_output=True, text=True, check=False)
    assert failed.returncode != 0
    log = (workdir / "results/logs/jets/prepare.log").read_text()
    assert f"{jets.relative_to(workdir)}: not a readable Parquet file" in log
    assert not list((workdir / "results/jets").rglob("*.npz"))
    assert not list((workdir / "results/jets").rglob("*.tmp"))
    assert not list((workdir / "results/jets").rglob(".*"))
    assert jets.exists()  # the input that was already written is kept
