"""The report's summary page: headline metrics of the three analyses beside the papers'
numbers, the configuration of the run and the software it ran on."""

import html
from dataclasses import dataclass

import yaml

from hepclust.ucluster.evaluation import PAPER as UCLUSTER_JETS_PAPER

# PRD 103, 092007, Fig. 7 left: 1% signal in, about 28% in the best of 30 clusters.
UCLUSTER_ANOMALY_PAPER = {"inclusive_sb": 0.01, "max_sb_k30": 0.28}
# Choma's thesis, Tables 3.1 (pairwise module) and 3.2 (10% of the tracks).
TRACKING_PAPER = {"trackml_score": 0.91, "edge_purity": 0.21, "edge_recall": 0.78,
                  "dbscan": 0.26}
SOFTWARE = ("torch", "torch_geometric", "snakemake", "numpy", "scipy", "scikit-learn",
            "iminuit", "pyarrow", "pythia8mc", "fastjet", "pyacts", "hepclust")


@dataclass(frozen=True)
class Row:
    analysis: str
    quantity: str
    ours: str
    paper: str = ""


def _number(value, spread=None) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = f"{value:.3f}"
    return f"{text} ± {spread:.3f}" if spread is not None else text


def jets_rows(metrics: dict) -> list[Row]:
    names = {"kmeans_pretrain_accuracy": "k-means after pretraining, accuracy",
             "ucluster_accuracy": "UCluster accuracy",
             "knn_embedding_accuracy": "KNN on the embedding, accuracy",
             "knn_mass_accuracy": "KNN on the jet mass, accuracy",
             "supervised_accuracy": "supervised ABCNet, accuracy"}
    seeds = metrics.get("over_seeds", {})
    rows = []
    for key, name in names.items():
        spread = seeds.get(key)
        ours = (_number(spread["mean"], spread["std"]) if spread
                else _number(metrics.get(key)))
        paper = UCLUSTER_JETS_PAPER.get(key)
        rows.append(Row("UCluster jets", name, ours, _number(paper) if paper else ""))
    return rows


def anomaly_rows(metrics: dict) -> list[Row]:
    by_k = metrics.get("max_sb_by_k", {})
    rows = [Row("UCluster anomaly", "inclusive S/B", _number(metrics.get("inclusive_sb")),
                _number(UCLUSTER_ANOMALY_PAPER["inclusive_sb"]))]
    for k in sorted(by_k, key=int):
        paper = UCLUSTER_ANOMALY_PAPER["max_sb_k30"] if k == "30" else None
        rows.append(Row("UCluster anomaly", f"best cluster S/B, K = {k}", _number(by_k[k]),
                        f"about {paper:.2f}" if paper else ""))
    rows.append(Row("UCluster anomaly", "lowest global-p cluster is the best-S/B one (K = 30)",
                    _number(metrics.get("lowest_p_cluster_is_max_sb")), "yes"))
    rows.append(Row("UCluster anomaly",
                    "background-only toys: fraction with global p < 0.05",
                    _number(metrics.get("bkg_only_frac_p_below_0p05")), "≈ 0.05 expected"))
    return rows


def tracking_rows(metrics: dict) -> list[Row]:
    rows = [Row("Tracking GNN", "TrackML score, Split/Stop", _number(metrics.get("trackml_score")),
                _number(TRACKING_PAPER["trackml_score"])),
            Row("Tracking GNN", "edge purity after refinement",
                _number(metrics.get("edge_purity")), _number(TRACKING_PAPER["edge_purity"])),
            Row("Tracking GNN", "edge recall after refinement",
                _number(metrics.get("edge_recall")), _number(TRACKING_PAPER["edge_recall"]))]
    for name, score in sorted(metrics.get("baseline_scores", {}).items()):
        paper = TRACKING_PAPER["dbscan"] if "helix" in name else None
        rows.append(Row("Tracking GNN", f"TrackML score, {name}", _number(score),
                        _number(paper) if paper else ""))
    rows.append(Row("Tracking GNN", "seconds per event",
                    _number(metrics.get("seconds_per_event"))))
    return rows


def _normalise(distribution: str) -> str:
    return distribution.lower().replace("_", "-")


def summary_page(rows: list[Row], config: dict, versions: dict) -> str:
    """A self-contained HTML page: the metrics table, the software and the config."""
    def cells(tag: str, values) -> str:
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(v))}</{tag}>" for v in values) + "</tr>"

    table = "\n".join([cells("th", ("analysis", "quantity", "this run", "paper")),
                       *(cells("td", (r.analysis, r.quantity, r.ours, r.paper)) for r in rows)])
    packages = {_normalise(name): version
                for name, version in versions.get("packages", {}).items()}
    software = [("python", versions.get("python")), ("platform", versions.get("platform")),
                *((name, packages.get(_normalise(name), "not installed"))
                  for name in SOFTWARE)]
    software_table = "\n".join(cells("td", pair) for pair in software)
    config_text = html.escape(yaml.safe_dump(config, sort_keys=False))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>hepclust: headline metrics</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
table {{ border-collapse: collapse; margin-bottom: 1.5em; }}
th, td {{ border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; }}
th {{ background: #eee; }}
pre {{ background: #f6f6f6; padding: 0.8em; }}
</style></head><body>
<h1>Headline metrics</h1>
<p>Test-split figures of this run beside the papers' (UCluster: PRD 103, 092007;
tracking: Choma, NYU MS thesis 2019). Means ± standard deviations are over seeds.</p>
<table id="metrics">
{table}
</table>
<h2>Software</h2>
<table id="software">
{software_table}
</table>
<h2>Configuration</h2>
<pre id="config">{config_text}</pre>
</body></html>
"""
