"""results/bench/anomaly.json from Snakemake benchmark files and training histories."""

import json

import pytest

from hepclust.bench import anomaly_benchmark, anomaly_job_needs, schedule_seconds

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def tsv(path, seconds, cpu, rss="512.5"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + f"{seconds}\t0:00:01\t{rss}\t900\t400\t450\t0\t0\t95\t{cpu}\n")
    return str(path)


def test_stages_are_summed_over_their_jobs(tmp_path):
    benchmarks = [tsv(tmp_path / "pretrain" / "n10_1.tsv", 100.0, 90.0),
                  tsv(tmp_path / "pretrain" / "n10_2.tsv", 50.0, 45.0, rss="NA"),
                  tsv(tmp_path / "fits" / "n10_1_k2.tsv", 2.0, 1.5, rss="80")]
    history = tmp_path / "pretrain_history.json"
    history.write_text(json.dumps([{"seconds": 10.0, "examples": 1000},
                                   {"seconds": 30.0, "examples": 1000}]))
    bench = anomaly_benchmark(benchmarks, [str(history)])
    assert bench["stages"]["pretrain"] == {"jobs": 2, "wall_seconds": 150.0,
                                           "cpu_seconds": 135.0, "max_rss_mb": 512.5}
    assert bench["stages"]["fits"]["jobs"] == 1
    assert bench["total_job_wall_seconds"] == pytest.approx(152.0)
    assert bench["total_cpu_seconds"] == pytest.approx(136.5)
    assert bench["train_events_per_s"]["pretrain"] == pytest.approx(50.0)
    assert bench["train_seconds_per_epoch"]["pretrain"] == pytest.approx(20.0)


def test_schedule_by_hand():
    """Two cores: a (4 s) then b (3 s) and c (1 s); d (2 s) needs c. The longest path
    first: b and c start at 4, d at 5 and ends at 7, b at 7."""
    durations = {"a": 4.0, "b": 3.0, "c": 1.0, "d": 2.0}
    needs = {"a": [], "b": ["a"], "c": ["a"], "d": ["c"]}
    result = schedule_seconds(durations, needs, cores=2)
    assert result["seconds"] == pytest.approx(7.0)
    assert result["critical_path_seconds"] == pytest.approx(7.0)
    assert result["upper_bound_seconds"] == pytest.approx(10.0 / 2 + 7.0 / 2)
    assert schedule_seconds(durations, needs, cores=1)["seconds"] == pytest.approx(10.0)
    with pytest.raises(ValueError, match="cycle"):
        schedule_seconds({"a": 1.0, "b": 1.0}, {"a": ["b"], "b": ["a"]}, cores=2)


def test_anomaly_jobs_wait_for_their_inputs(tmp_path):
    jobs = ["prepare/prepare", "fit_range/fit_range", "pretrain/n10_1", "ucluster/n10_1_k2",
            "ucluster/n10_1_k3", "evaluate/n10_1_k2", "evaluate/n10_1_k3", "fits/n10_1_k3",
            "inject/n10_1_k3", "calibrate/calibrate", "metrics/metrics", "plots/plots"]
    needs = anomaly_job_needs(jobs, scan_runs=["n10_1_k3"])
    assert needs["ucluster/n10_1_k2"] == ["pretrain/n10_1"]
    assert needs["fits/n10_1_k3"] == ["evaluate/n10_1_k3", "fit_range/fit_range"]
    assert needs["calibrate/calibrate"] == ["evaluate/n10_1_k3", "fit_range/fit_range"]
    assert set(needs["metrics/metrics"]) >= {"calibrate/calibrate", "inject/n10_1_k3"}
    with pytest.raises(ValueError, match="not a stage"):
        anomaly_job_needs(["train/x"], [])
    # The whole analysis on two cores from the benchmark files: pretraining 100 s, each
    # clustering 50 s, the rest 1 s: 100 + 50 + 1 (evaluate) + ... at most one core idle.
    paths = [tsv(tmp_path / job.split("/")[0] / f"{job.split('/')[1]}.tsv", 1.0,
                 {"pretrain": 100.0, "ucluster": 50.0}.get(job.split("/")[0], 1.0))
             for job in jobs]
    bench = anomaly_benchmark(paths, [], scan_runs=["n10_1_k3"], cores=2)
    estimate = bench["estimated_seconds_on_cores"]
    assert estimate["critical_path_seconds"] == pytest.approx(1 + 100 + 50 + 1 + 1 + 1 + 1 + 1)
    assert estimate["seconds"] == pytest.approx(estimate["critical_path_seconds"])
    assert bench["elapsed_seconds_of_the_run"] >= 1.0
