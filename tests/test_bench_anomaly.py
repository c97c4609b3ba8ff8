"""results/bench/anomaly.json from Snakemake benchmark files and training histories."""

import json

import pytest

from hepclust.bench import anomaly_benchmark

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
