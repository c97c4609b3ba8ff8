"""The jets analysis's time on 2 cores from Snakemake benchmark files."""

import pytest

from hepclust.bench import jets_job_needs, jets_time_on_cores

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def tsv(path, seconds, cpu):
    path.write_text(HEADER + f"{seconds}\t0:00:01\t500\t900\t400\t450\t0\t0\t95\t{cpu}\n")
    return str(path)


def test_jets_jobs_wait_for_their_inputs():
    jobs = ["prepare", "pretrain_1", "pretrain_2", "ucluster_1", "ucluster_2",
            "supervised_1", "supervised_2", "evaluate_1", "evaluate_2", "metrics", "plots"]
    needs = jets_job_needs(jobs)
    assert needs["prepare"] == []
    assert needs["supervised_2"] == ["prepare"]
    assert needs["ucluster_1"] == ["pretrain_1"]
    assert needs["evaluate_2"] == ["pretrain_2", "ucluster_2", "supervised_2"]
    assert needs["metrics"] == ["evaluate_1", "evaluate_2"]
    assert needs["plots"] == ["metrics"]
    with pytest.raises(ValueError, match="not a stage"):
        jets_job_needs(["train_1"])


def test_jets_time_on_two_cores_by_hand(tmp_path):
    """Two seeds: prepare 10 s; pretraining 100 s, clustering 40 s, supervised 90 s,
    evaluation 5 s each; metrics and plots 1 s. The longest path first: both pretrainings
    from 10 to 110, then both supervised (the longer path left) to 200, both clusterings
    to 240, both evaluations to 245, metrics and plots: 247 s; the total 2 x 235 + 12 =
    482 CPU s."""
    cpu = {"prepare": 10, "metrics": 1, "plots": 1}
    for seed in (1, 2):
        cpu.update({f"pretrain_{seed}": 100, f"ucluster_{seed}": 40,
                    f"supervised_{seed}": 90, f"evaluate_{seed}": 5})
    paths = [tsv(tmp_path / f"{job}.tsv", 2.0 * seconds, seconds)
             for job, seconds in cpu.items()]
    result = jets_time_on_cores(paths, cores=2)
    estimate = result["estimated_seconds_on_cores"]
    assert estimate["seconds"] == pytest.approx(247.0)
    assert estimate["critical_path_seconds"] == pytest.approx(10 + 100 + 40 + 5 + 1 + 1)
    assert result["total_cpu_seconds"] == pytest.approx(482.0)
    assert result["stages"]["pretrain"] == {"jobs": 2, "wall_seconds": 400.0,
                                            "cpu_seconds": 200.0}
