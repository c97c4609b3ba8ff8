"""The report's summary page: metrics beside the papers' numbers, software and config."""

from importlib.metadata import version

from hepclust.archive import software_versions
from hepclust.report.headline import anomaly_rows, jets_rows, summary_page, tracking_rows

JETS = {"ucluster_accuracy": 0.7, "kmeans_pretrain_accuracy": 0.5,
        "over_seeds": {"ucluster_accuracy": {"mean": 0.65, "std": 0.05}}}
ANOMALY = {"inclusive_sb": 0.0101, "max_sb_by_k": {"30": 0.2, "5": 0.05},
           "lowest_p_cluster_is_max_sb": True, "bkg_only_frac_p_below_0p05": 0.04}
TRACKING = {"trackml_score": 0.8, "edge_purity": 0.3, "edge_recall": 0.9,
            "baseline_scores": {"dbscan_helix": 0.25, "connected_components": 0.4},
            "seconds_per_event": 1.5}


def by_quantity(rows):
    return {row.quantity: row for row in rows}


def test_jets_rows_prefer_the_mean_over_seeds_and_carry_the_papers_numbers():
    rows = by_quantity(jets_rows(JETS))
    assert rows["UCluster accuracy"].ours == "0.650 ± 0.050"
    assert rows["UCluster accuracy"].paper == "0.810"
    assert rows["k-means after pretraining, accuracy"].ours == "0.500"
    assert rows["KNN on the jet mass, accuracy"].ours == "n/a"


def test_anomaly_rows_are_ordered_by_k_and_compare_k30_with_the_paper():
    rows = anomaly_rows(ANOMALY)
    quantities = [row.quantity for row in rows]
    assert quantities.index("best cluster S/B, K = 5") < quantities.index(
        "best cluster S/B, K = 30")
    k30 = by_quantity(rows)["best cluster S/B, K = 30"]
    assert (k30.ours, k30.paper) == ("0.200", "about 0.28")
    assert by_quantity(rows)["lowest global-p cluster is the best-S/B one (K = 30)"].ours == "yes"


def test_tracking_rows_list_every_baseline():
    rows = by_quantity(tracking_rows(TRACKING))
    assert rows["TrackML score, Split/Stop"].paper == "0.910"
    assert rows["TrackML score, dbscan_helix"].paper == "0.260"
    assert rows["TrackML score, connected_components"].ours == "0.400"


def test_the_page_escapes_and_shows_metrics_software_and_config():
    rows = jets_rows(JETS) + anomaly_rows(ANOMALY) + tracking_rows(TRACKING)
    page = summary_page(rows, {"seed": 1, "note": "<b>"}, software_versions())
    assert page.count("<tr>") == len(rows) + 1 + 2 + 12
    assert "0.650 ± 0.050" in page
    assert "&lt;b&gt;" in page
    assert f"<td>torch</td><td>{version('torch')}</td>" in page
