"""The tiny workflow through a real single-node SLURM (tests/slurm_cluster.py), run as root.

The whole tiny default target is 50 jobs, several minutes through a 2-core SLURM, so this
runs one chain of it: jet generation, merging into the Parquet table, preparation, and
one UCluster pretraining. The pretraining asks for a GPU (`gpu=1`, what a rule declares
with `device: cuda`) while the config keeps torch on the CPU; the cluster's test GPU is
/dev/null, so this checks that the request reaches SLURM, not CUDA.
"""

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from slurm_cluster import jobs, single_node_slurm, slurm_available
from system_tools import requires

ROOT = Path(__file__).resolve().parents[1]
TARGET = "results/jets/seed700/pretrained.pt"  # seed 7 of the tiny config, first training
GPU_RULE = "pretrain_jets"
EXPECTED_RULES = Counter(
    {"generate_jets": 3, "merge_jets": 1, "prepare_jet_clustering": 1, GPU_RULE: 1}
)

pytestmark = [
    pytest.mark.slurm,
    requires(slurm_available(), "needs root and SLURM (slurmctld, slurmd, slurm-client, munge)"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with single_node_slurm(tmp_path_factory.mktemp("slurm")) as env:
        yield env


@pytest.fixture(scope="module")
def run(cluster, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm_workflow")
    command = [
        sys.executable, "-m", "snakemake", TARGET,
        "-s", str(ROOT / "Snakefile"), "-d", str(workdir),
        "--configfile", str(ROOT / ".test/config/config.yaml"),
        "--workflow-profile", str(ROOT / "workflow/profiles/slurm"),
        # No accounting database here: job states come from squeue, which keeps finished
        # jobs for MinJobAge; and without this first wait each job costs 40 s more.
        "--slurm-status-command", "squeue", "--slurm-no-account",
        "--slurm-init-seconds-before-status-checks", "2",
        "--set-resources", f"{GPU_RULE}:gpu=1",
    ]
    result = subprocess.run(command, env={**cluster, "OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-5000:]
    return workdir, result.stderr


def _rule(job: dict[str, str]) -> str:
    """The rule of a SLURM job, from the comment the plugin gives it."""
    return re.sub(r"^rule_|_wildcards_.*$", "", job["Comment"])


def test_workflow_runs_to_the_target(run):
    workdir, log = run
    assert (workdir / TARGET).stat().st_size > 0
    assert (workdir / "results/data/jets.parquet").is_file()
    count = sum(EXPECTED_RULES.values())
    assert f"{count} of {count} steps (100%) done" in log


def test_every_job_went_through_the_controller(run, cluster):
    _, log = run
    submitted = {int(i) for i in re.findall(r"submitted with SLURM jobid (\d+)", log)}
    known = jobs(cluster)
    assert submitted == set(known)
    assert {job["JobState"] for job in known.values()} == {"COMPLETED"}
    assert Counter(_rule(job) for job in known.values()) == EXPECTED_RULES


def test_only_the_gpu_rule_asked_slurm_for_a_gpu(run, cluster):
    requests = [(_rule(job), job.get("TresPerJob")) for job in jobs(cluster).values()]
    assert [(rule, tres) for rule, tres in requests if tres] == [(GPU_RULE, "gres:gpu:1")]
