"""The anomaly numbers: one clustering's S/B table and metrics.json from all of them."""

import json

import numpy as np
import pytest

from hepclust.anomaly.summary import clustering_summary, combine, spread

# Evaluation: cluster 0 holds 1 signal and 9 background, cluster 1 holds 3 and 3, cluster 2
# holds 1 signal alone (too small to count as best with min_events 2).
LABELS = np.array([1] + [0] * 9 + [1, 1, 1, 0, 0, 0] + [1])
CLUSTERS = np.array([0] * 10 + [1] * 6 + [2])


def test_clustering_summary_by_hand():
    summary = clustering_summary(LABELS, CLUSTERS, 3, min_events=2,
                                 test_labels=np.array([1, 0, 1]),
                                 test_clusters=np.array([0, 1, 0]))
    assert summary["inclusive_sb"] == pytest.approx(5 / 12)
    assert summary["inclusive_significance"] == pytest.approx(5 / np.sqrt(12))
    assert summary["best_cluster"] == 1
    assert summary["max_sb"] == 1.0
    assert summary["max_significance"] == pytest.approx(3 / np.sqrt(3))
    # Cluster 0 is the best on the test sample: its evaluation S/B is 1/9.
    assert summary["test_best_cluster"] == 0
    assert summary["sb_of_test_best"] == pytest.approx(1 / 9)
    json.dumps(summary, allow_nan=False)


def test_spread_skips_missing_values():
    assert spread([0.1, 0.3, None]) == {"mean": pytest.approx(0.2), "std": pytest.approx(0.1),
                                        "values": [0.1, 0.3, None], "missing": 1}
    assert spread([None])["mean"] is None


def run(events, k, seed, max_sb, significance, best=0):
    return {"train_events": events, "k": k, "seed": seed, "events": events, "signal": 10,
            "background": 1000, "inclusive_sb": 0.01, "inclusive_significance": 0.3,
            "max_sb": max_sb, "max_significance": significance, "best_cluster": best,
            "sb_of_test_best": max_sb / 2, "rows": []}


def search(lowest, p_values):
    rows = [{"cluster": c, "global_p": p, "local_p": p and p / 10, "mass": 3500.0,
             "valid": p is not None} for c, p in enumerate(p_values)]
    valid = [p for p in p_values if p is not None]
    return {"lowest_global_p_cluster": lowest, "clusters": rows,
            "global_p_over_clusters": 1 - (1 - min(valid)) ** len(valid),
            "valid_clusters": len(valid), "failed_clusters": len(p_values) - len(valid)}


CALIBRATION = {
    "models": {model: {"global_p": {"fraction": fraction, "error": 0.01, "toys": 600},
                       "local_p": {"fraction": 0.4, "error": 0.02, "toys": 600}, "failed": 0}
               for model, fraction in (("frozen", 0.2), ("own", 0.045), ("transfer", 0.06))},
    "fraction_below_0p05": {"frozen": 0.2, "own": 0.045, "transfer": 0.06},
    "truths": 20,
    "power": {"own": {"1": {"global_p": 1e-4}, "2": {"global_p": 0.3}}},
}
INJECTIONS = [{"seed": seed, "points": [{"fraction": 0.0, "global_significance": 0.0},
                                        {"fraction": 0.01, "global_significance": z}]}
              for seed, z in ((1, 3.0), (2, 5.0))]


def test_combine_gathers_every_clustering():
    runs = [run(100, 2, 1, 0.02, 1.0), run(100, 2, 2, 0.04, 1.2),
            run(100, 3, 1, 0.10, 2.0, best=2), run(100, 3, 2, 0.20, 3.0, best=1),
            run(50, 3, 1, 0.05, 0.5), run(50, 3, 2, 0.07, 0.7)]
    fits = [{"k": 3, "seed": 1, "signal": search(2, [0.3, 0.5, 1e-4]),
             "background_only": search(0, [0.01, 0.5, None])},
            {"k": 3, "seed": 2, "signal": search(0, [1e-3, 0.4, 0.5]),
             "background_only": search(1, [0.5, 0.2, 0.6])},
            {"k": 2, "seed": 1, "signal": search(0, [0.3, 0.5]),
             "background_only": search(0, [0.04, 0.5])}]
    metrics = combine(runs, fits, train_events=100, scan_clusters=3, calibration=CALIBRATION,
                      injections=INJECTIONS, fit_range={"low": 3000.0, "high": 6000.0,
                                                        "chosen_from_data": True},
                      background_model="own")
    assert metrics["max_sb_by_k"] == {"2": pytest.approx(0.03), "3": pytest.approx(0.15)}
    assert metrics["max_sb_over_seeds"]["3"]["std"] == pytest.approx(0.05)
    assert metrics["inclusive_sb"] == 0.01
    assert [p["train_events"] for p in metrics["significance_vs_train_events"]] == [50, 100]
    # Seed 1's lowest-p cluster is its best (cluster 2); seed 2's best is cluster 1.
    assert metrics["lowest_global_p_cluster_is_max_sb_by_seed"] == {"1": True, "2": False}
    assert metrics["lowest_global_p_cluster_is_max_sb"] is False
    assert metrics["signal_cluster_global_p"] == {"1": 1e-4, "2": 0.4}
    assert metrics["global_p_over_clusters"]["1"] == pytest.approx(1 - (1 - 1e-4) ** 3)
    # The calibration on independent toys, for the configured model and every model.
    assert metrics["bkg_only_frac_p_below_0p05"] == 0.045
    assert metrics["bkg_only_frac_p_below_0p05_by_model"]["frozen"] == 0.2
    assert metrics["signal_cluster_global_p_by_model"] == {"own": {"1": 1e-4, "2": 0.3}}
    # The real background-only clusters: 7 valid p-values, 2 below 0.05, 1 failed.
    assert metrics["bkg_only_observed_frac_p_below_0p05"] == pytest.approx(2 / 7)
    assert metrics["bkg_only_observed_frac_p_below_0p05_by_k"] == {
        "2": 0.5, "3": pytest.approx(1 / 5)}
    assert metrics["bkg_only_failed_clusters"] == 1
    assert metrics["injection"] == {"0.0": 0.0, "0.01": pytest.approx(4.0)}
    assert metrics["fit_range"]["low"] == 3000.0
    assert len(metrics["clusterings"]) == 6
    json.dumps(metrics, allow_nan=False)


def test_combine_needs_the_full_training_sample():
    with pytest.raises(ValueError, match="full 100 events"):
        combine([run(50, 3, 1, 0.1, 1.0)], [], train_events=100, scan_clusters=3,
                calibration=CALIBRATION, injections=[], fit_range={}, background_model="own")
