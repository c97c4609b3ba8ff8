"""The whole data stage on the tiny config, through Snakemake, into a fresh directory."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
import torch
import yaml

from hepclust.cli import main
from hepclust.io.hls4ml import write_hls4ml
from hepclust.io.lhco import N_COLUMNS
from hepclust.io.parquet import read_table
from hepclust.io.schema import JETS, TRACKML_EVENT_HITS
from hepclust.tracking.score import score_event
from report_browser import CHROMIUM, browse_report
from system_tools import requires

ROOT = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str,
              configfile: Path = ROOT / ".test/config/config.yaml") -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "-s", str(ROOT / "Snakefile"),
               "-d", str(workdir), "--configfile", str(configfile), "--cores", "2", *args]
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
def test_default_target_simulates_the_tracking_events(run):
    data = run / "results" / "data"
    hits = read_table(data / "tracking" / "hits.parquet", TRACKML_EVENT_HITS)
    assert sorted(set(hits.column("event_id").to_pylist())) == [1, 2]
    assert sorted(p.name for p in (data / "tracking" / "csv" / "000").glob("event*")) == [
        f"event00000000{i}-{part}.csv" for i in (1, 2)
        for part in ("cells", "hits", "particles", "truth")]
    summary = json.loads((data / "tracking" / "summary.json").read_text())
    assert 8000 < summary["hits_per_event"] < 25000
    assert summary["noise_fraction"] == pytest.approx(0.15, abs=0.02)
    assert summary["frac_pixel_hits_with_cells"] == 1.0
    assert summary["mean_weight_sum_per_event"] == pytest.approx(1.0, rel=1e-4)
    assert (data / "plots" / "tracking_event.png").stat().st_size > 10_000
    assert (data / "plots" / "tracking_validation.png").stat().st_size > 10_000


@pytest.mark.workflow
def test_default_target_runs_ucluster_on_the_jets(run):
    jets = run / "results" / "jets"
    metrics = json.loads((jets / "metrics.json").read_text())
    for key in ("kmeans_pretrain_accuracy", "ucluster_accuracy", "knn_embedding_accuracy",
                "supervised_accuracy"):
        assert 0 <= metrics[key] <= 1
    for key in ("knn_embedding_auc", "knn_mass_auc", "knn_full_mass_auc", "gbdt_auc"):
        assert set(metrics[key]) == {"W", "Z", "top"}
        assert all(0 <= auc <= 1 for auc in metrics[key].values())
    assert len(metrics["seeds"]) == 2
    assert set(metrics["init_accuracy"]) == {"kmeans", "kl", "kl_fit"}
    assert 0 < metrics["test_jets"] + metrics["train_jets"] <= 60  # inside the mass window
    for plot in ("roc.png", "tsne.png", "accuracy.png"):
        assert (jets / "plots" / plot).stat().st_size > 10_000
    history = json.loads((jets / f"seed{metrics['seed']}" / "ucluster_history.json").read_text())
    assert [h["epoch"] for h in history] == [0, 1]


ANOMALY_PLOTS = ("embedding.png", "max_sb.png", "significance.png", "mjj_best_cluster.png",
                 "background_fit.png", "global_features.png", "p_values.png",
                 "calibration.png", "injection.png", "fit_range.png")


@pytest.mark.workflow
def test_default_target_runs_the_anomaly_search(run):
    anomaly = run / "results" / "anomaly"
    metrics = json.loads((anomaly / "metrics.json").read_text())
    # The tiny config: 16 training, 8 test and 16 evaluation events; K in [2, 3]; 2 seeds.
    assert metrics["eval_events"] == 16
    assert metrics["inclusive_sb"] == metrics["eval_signal"] / (16 - metrics["eval_signal"])
    assert set(metrics["max_sb_by_k"]) == {"2", "3"}
    assert all(value is None or value >= 0 for value in metrics["max_sb_by_k"].values())
    assert isinstance(metrics["lowest_p_cluster_is_max_sb"], bool)
    fraction = metrics["bkg_only_frac_p_below_0p05"]
    assert fraction is None or 0 <= fraction <= 1
    assert set(metrics["bkg_only_frac_p_below_0p05_by_model"]) == {"frozen", "own", "transfer"}
    assert set(metrics["signal_cluster_global_p"]) == set(
        metrics["lowest_global_p_cluster_is_max_sb_by_seed"])
    assert set(metrics["injection"]) == {"0.0", "0.01"}
    assert [p["train_events"] for p in metrics["significance_vs_train_events"]] == [8, 16]
    assert len(metrics["clusterings"]) == 2 * 2 + 2
    for run_summary in metrics["clusterings"]:
        assert len(run_summary["rows"]) == run_summary["k"]
        assert sum(r["signal"] + r["background"] for r in run_summary["rows"]) == \
            run_summary["events"]
    # Every cluster of every fit is reported, failed or not, with its fit details.
    assert len(metrics["fits"]) == 2 * 2
    for fit in metrics["fits"]:
        for sample in ("signal", "background_only"):
            rows = fit[sample]["clusters"]
            assert [row["cluster"] for row in rows] == list(range(fit["k"]))
            for row in rows:
                assert isinstance(row["valid"], bool)
                assert row["valid"] or row["message"]
            assert fit[sample]["valid_clusters"] + fit[sample]["failed_clusters"] == fit["k"]
    for plot in ANOMALY_PLOTS:
        assert (anomaly / "plots" / plot).stat().st_size > 10_000
    result = snakemake(run, "results/bench/anomaly.json")
    assert result.returncode == 0, result.stderr[-3000:]
    bench = json.loads((run / "results" / "bench" / "anomaly.json").read_text())
    assert set(bench["stages"]) == {"prepare", "pretrain", "ucluster", "evaluate", "fits",
                                    "fit_range", "calibrate", "inject", "metrics", "plots"}
    assert bench["stages"]["ucluster"]["jobs"] == 6
    assert bench["total_cpu_seconds"] > 0
    # Every job's dependencies are known: 2 cores take at least half the CPU time, at most all.
    estimate = bench["estimated_seconds_on_cores"]
    assert bench["total_cpu_seconds"] / 2 - 1e-6 <= estimate["seconds"] <= \
        bench["total_cpu_seconds"] + 1e-6
    assert estimate["critical_path_seconds"] <= estimate["seconds"] + 1e-6


@pytest.mark.workflow
def test_default_target_runs_the_tracking_clustering_gnn(run):
    tracking = run / "results" / "tracking"
    metrics = json.loads((tracking / "metrics.json").read_text())
    for key in ("trackml_score", "edge_recall", "edge_purity", "seconds_per_event"):
        assert metrics[key] is not None
    assert 0 <= metrics["trackml_score"] <= 1
    assert set(metrics["baseline_scores"]) == {
        "dbscan_helix", "dbscan_trackml_benchmark", "dbscan_embedding", "dbscan_gnn",
        "components_gnn",
        "components_refined", "split_stop_before_fine_tuning", "split_stop_start",
        "split_stop_without_reclustering"}
    assert set(metrics["table_3_1"]) >= {"all_pairs", "embedding", "refined", "classified"}
    assert metrics["table_3_1"]["classified"]["edges"] <= metrics["table_3_1"]["refined"]["edges"]
    assert metrics["table_3_1"]["refined"]["edges"] <= metrics["table_3_1"]["embedding"]["edges"]
    assert set(metrics["binned"]) == {"pt", "eta"}
    (event, score), = metrics["per_event_scores"].items()
    # The submission rescored from its files gives the score of metrics.json.
    submission = pd.read_csv(tracking / "submissions" / f"{event}.csv")
    truth = pd.read_csv(tracking / "submissions" / f"{event}-truth.csv")
    assert list(submission.columns) == ["event_id", "hit_id", "track_id"]
    assert score_event(truth, submission) == pytest.approx(score, abs=1e-9)
    hits = read_table(run / "results/data/tracking/hits.parquet", TRACKML_EVENT_HITS)
    assert len(truth) == pc.sum(pc.equal(hits["event_id"], int(event[5:]))).as_py()
    scaling = json.loads((run / "results" / "bench" / "tracking_scaling.json").read_text())
    assert len(scaling["hits"]) == len(scaling["seconds"]) == 2
    assert scaling["hits"][0] < scaling["hits"][1]
    assert scaling["exponent"] is not None
    for plot in ("scores.png", "rates.png", "event_tracks.png", "scaling.png"):
        assert (tracking / "plots" / plot).stat().st_size > 10_000


@pytest.mark.workflow
def test_hepclust_track_reconstructs_an_event_with_the_trained_models(run, tmp_path, capsys):
    models = run / "results" / "tracking" / "models"
    event = run / "results" / "data" / "tracking" / "csv" / "000" / "event000000002"
    config = ROOT / ".test/config/config.yaml"
    arguments = ["track", str(models), str(event), "-o", str(tmp_path / "sub.csv"),
                 "--config", str(config)]
    assert main(arguments) == 0
    assert "score: " in capsys.readouterr().out
    submission = pd.read_csv(tmp_path / "sub.csv")
    assert list(submission.columns) == ["event_id", "hit_id", "track_id"]
    assert set(submission["event_id"]) == {2}
    # A test event has no truth: the tracks are written, no score is printed.
    blind = tmp_path / "blind"
    blind.mkdir()
    for part in ("hits", "cells"):
        (blind / f"event000000002-{part}.csv").write_bytes(
            Path(f"{event}-{part}.csv").read_bytes())
    arguments[2:5] = [str(blind / "event000000002"), "-o", str(tmp_path / "blind.csv")]
    assert main(arguments) == 0
    assert "score" not in capsys.readouterr().out
    assert pd.read_csv(tmp_path / "blind.csv")["track_id"].tolist() == (
        submission["track_id"].tolist())


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
    tracking = json.loads((run / "results" / "bench" / "tracking_data.json").read_text())
    for key in ("events_per_s", "events_per_s_full_density", "score_hits_per_s"):
        assert tracking[key] > 0
    assert tracking["full_density"]["hits_per_event"] > 80_000
    jets = json.loads((run / "results" / "bench" / "jets.json").read_text())
    assert jets["inference_jets_per_s"] > 0
    assert set(jets["train_seconds_per_epoch"]) == {"pretrain", "ucluster", "supervised"}
    assert set(jets["train_jets_per_cpu_s"]) == {"pretrain", "ucluster", "supervised"}
    # Every jets job has a benchmark file and known dependencies: 2 cores take at least
    # half the CPU time and at most all of it.
    assert set(jets["stages"]) == {"prepare", "pretrain", "ucluster", "supervised",
                                   "evaluate", "metrics", "plots"}
    estimate = jets["estimated_seconds_on_cores"]
    assert jets["total_cpu_seconds"] / 2 - 1e-6 <= estimate["seconds"] <= \
        jets["total_cpu_seconds"] + 1e-6


@pytest.mark.workflow
def test_report_shows_the_data_plots(run):
    report = run / "results" / "report.html"
    result = snakemake(run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    html = report.read_text()
    for plot in ("jet_mass.png", "mjj.png", "dijet_jets.png", "tracking_event.png",
                 "tracking_validation.png", "roc.png",
                 "tsne.png", "accuracy.png"):
        assert plot in html
    for plot in ANOMALY_PLOTS:
        assert plot in html
    for plot in ("scores.png", "rates.png", "event_tracks.png", "scaling.png"):
        assert plot in html


REPORT_PLOTS = {
    "Data": ("jet_mass.png", "mjj.png", "dijet_jets.png", "tracking_event.png",
             "tracking_validation.png"),
    "UCluster jets": ("roc.png", "tsne.png", "accuracy.png"),
    "UCluster anomaly detection": ANOMALY_PLOTS,
    "Tracking clustering GNN": ("scores.png", "rates.png", "event_tracks.png", "scaling.png"),
}
SCREENSHOT = ROOT / "test-output" / "report.png"


@pytest.mark.workflow
@requires(CHROMIUM is not None, "needs chromium-headless-shell (make system-packages)")
def test_report_renders_every_plot_in_chromium(run, tmp_path):
    report = tmp_path / "report.html"
    result = snakemake(run, "--report", str(report))
    assert result.returncode == 0, result.stderr[-3000:]
    found = browse_report(report, tmp_path, "results/jets/plots/roc.png", SCREENSHOT)
    assert set(found["categories"]) == {"Summary", *REPORT_PLOTS}
    shown = {Path(name).name: view for name, view in found["results"].items()}
    for category, plots in REPORT_PLOTS.items():
        for plot in plots:
            assert shown[plot]["path"][0] == category
            assert shown[plot]["images"] == 1, plot
            assert shown[plot]["width"] > 300, plot
    assert shown["summary.html"]["frames"] == 1
    assert SCREENSHOT.stat().st_size > 20_000
    print(f"report screenshot: {SCREENSHOT}")


@pytest.mark.workflow
def test_real_hls4ml_files_replace_the_generated_jets(run, tmp_path):
    generated = read_table(run / "results" / "data" / "jets.parquet", JETS)
    source = tmp_path / "jets_hls4ml.h5"
    write_hls4ml(source, generated)
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    config["jets"]["input"] = [str(source)]
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "results/data/jets.parquet", configfile=tmp_path / "config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "results/data/jets/converted/jets_hls4ml.parquet").is_file()
    assert not (tmp_path / "results/data/jets/shards").exists()
    converted = pq.read_table(tmp_path / "results/data/jets.parquet")
    assert sorted(converted.column("jet_mass").to_pylist()) == pytest.approx(
        sorted(generated.column("jet_mass").to_pylist()), rel=1e-5)


@pytest.mark.workflow
def test_real_trackml_events_replace_the_simulated_ones(run, tmp_path):
    simulated = read_table(run / "results/data/tracking/hits.parquet", TRACKML_EVENT_HITS)
    events = run / "results/data/tracking/csv/000"
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    # A directory of events and one event named by its prefix.
    config["tracking"]["input"] = [str(events), str(tmp_path / "extra" / "event000000007")]
    (tmp_path / "extra").mkdir()
    for part in ("hits", "truth", "particles"):
        (tmp_path / "extra" / f"event000000007-{part}.csv").write_bytes(
            (events / f"event000000001-{part}.csv").read_bytes())
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "results/data/tracking/hits.parquet",
                       configfile=tmp_path / "config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "results/data/tracking/csv").exists()
    merged = read_table(tmp_path / "results/data/tracking/hits.parquet", TRACKML_EVENT_HITS)
    assert sorted(set(merged.column("event_id").to_pylist())) == [1, 2, 7]
    assert merged.num_rows == simulated.num_rows + simulated.filter(
        pc.equal(simulated["event_id"], 1)).num_rows

    # Keeping a tenth of the particles reruns the merge alone.
    config["tracking"]["subsample_fraction"] = 0.1
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "results/data/tracking/hits.parquet",
                       configfile=tmp_path / "config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "merge_tracking" in result.stdout + result.stderr
    thinned = read_table(tmp_path / "results/data/tracking/hits.parquet", TRACKML_EVENT_HITS)
    assert 0.07 < thinned.num_rows / merged.num_rows < 0.13
    for event in (1, 2, 7):
        weights = thinned.filter(pc.equal(thinned["event_id"], event))["weight"]
        assert pc.sum(weights).as_py() == pytest.approx(1.0, rel=1e-4)


FIVE_CLASSES = ["W", "Z", "top", "q", "g"]
DROP_REASON = "fewer than two anti-kt R = 1 jets with pT > 20 GeV"


def lhco_rows(n_events: int, seed: int) -> np.ndarray:
    """Rows of the R&D file: two back-to-back jets of six particles each (about 1.5 TeV,
    m_jj about 3.4 TeV), 10% labelled signal; then one event of a single particle."""
    rng = np.random.default_rng(seed)
    rows = np.zeros((n_events + 1, N_COLUMNS))
    for event in range(n_events):
        particles = []
        for eta, phi in ((0.5, 0.0), (-0.5, np.pi)):
            for _ in range(6):
                particles += [rng.uniform(150, 350), eta + rng.normal(0, 0.2),
                              np.angle(np.exp(1j * (phi + rng.normal(0, 0.2))))]
        rows[event, :len(particles)] = particles
        rows[event, -1] = event % 10 == 0
    rows[n_events, :3] = [800.0, 0.0, 0.0]
    return rows


@pytest.mark.workflow
def test_real_layout_hls4ml_and_lhco_files_run_the_jets_and_dijet_stages(tmp_path, toy_jets):
    """The jets analysis on an hls4ml file holding all five classes, and the anomaly
    search on an LHC Olympics file, from conversion to metrics."""
    five = toy_jets.set_column(toy_jets.schema.get_field_index("label"), "label",
                               pa.array(np.arange(toy_jets.num_rows) % 5, pa.int8()))
    write_hls4ml(tmp_path / "jetImage_0_30p_0_60.h5", five, max_constituents=30)
    pd.DataFrame(lhco_rows(60, seed=3)).to_hdf(tmp_path / "events_anomalydetection.h5",
                                              key="df", mode="w")
    config = yaml.safe_load((ROOT / ".test/config/config.yaml").read_text())
    config["jets"]["input"] = [str(tmp_path / "jetImage_0_30p_0_60.h5")]
    config["dijets"]["input"] = [str(tmp_path / "events_anomalydetection.h5")]
    config["jet_clustering"].update(classes=FIVE_CLASSES, clusters=5, seeds=1)
    config["anomaly"].update(seeds=1, clusters=[2], scan_clusters=2, mjj_low=2500,
                             mjj_high=4500, mjj_bin_width=250)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    work = tmp_path / "run"
    result = snakemake(work, "results/jets/metrics.json", "results/anomaly/metrics.json",
                       "results/data/summary.json", configfile=tmp_path / "config.yaml")
    assert result.returncode == 0, result.stderr[-3000:]

    prepared = json.loads((work / "results/jets/data/summary.json").read_text())
    assert prepared["classes"] == FIVE_CLASSES
    assert prepared["jets"] == dict.fromkeys(FIVE_CLASSES, 12)
    assert prepared["left_out"] == {}
    metrics = json.loads((work / "results/jets/metrics.json").read_text())
    assert metrics["classes"] == FIVE_CLASSES
    assert set(metrics["knn_embedding_auc"]) == set(FIVE_CLASSES)
    assert 0 <= metrics["supervised_accuracy"] <= 1
    assert len(metrics["cluster_sizes"]["ucluster"]) == 5
    supervised = torch.load(work / f"results/jets/seed{metrics['seed']}/supervised.pt",
                            weights_only=True)
    assert supervised["num_classes"] == 5

    summary = json.loads((work / "results/data/summary.json").read_text())
    assert summary["jets"]["converted"]["rows"] == 60
    assert summary["dijets"]["events"] == 60
    assert summary["dijets"]["converted"]["events_read"] == 61
    assert summary["dijets"]["converted"]["dropped"] == {DROP_REASON: 1}
    log = (work / "results/logs/convert/dijets/events_anomalydetection.log").read_text()
    assert f"dropped 1 of 61 events: {DROP_REASON}" in log
    assert "FastJet" not in log  # its banner is silenced
    anomaly = json.loads((work / "results/anomaly/metrics.json").read_text())
    assert anomaly["eval_events"] == 16
    assert set(anomaly["max_sb_by_k"]) == {"2"}
    assert len(anomaly["clusterings"]) == 2  # K = 2 on 16 and on 8 training events
