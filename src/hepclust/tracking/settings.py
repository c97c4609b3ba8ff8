"""Typed settings of the clustering GNN's stages from the config's `tracking_clustering`
block (described in workflow/schemas/config.schema.yaml)."""

from hepclust.tracking.alternatives import BaselineSettings
from hepclust.tracking.embedding import EmbeddingSettings
from hepclust.tracking.pipeline import ClusteringSettings, GraphSettings
from hepclust.tracking.refinement import RefinementSettings
from hepclust.ucluster.training import Schedule

LR_MIN = 1e-5


def embedding_settings(config: dict) -> EmbeddingSettings:
    block = config["embedding"]
    return EmbeddingSettings(
        truth=block["truth"], hidden=tuple(block["hidden"]), embedding_dim=block["dim"],
        epochs=block["epochs"],
        batch_size=block["batch_size"],
        schedule=Schedule(block["lr"], block["lr_halving_epochs"], LR_MIN),
        max_true_pairs=block["max_true_pairs"], hard_negative_k=block["hard_negative_k"],
        hard_negative_start=block["hard_negative_start"])


def refinement_settings(config: dict) -> RefinementSettings:
    block = config["refinement"]
    return RefinementSettings(architecture=block["architecture"],
                              hidden=tuple(block["hidden"]), steps=block["steps"],
                              sectors=block["sectors"], epochs=block["epochs"],
                              batch_size=block["batch_size"],
                              schedule=Schedule(block["lr"], block["lr_halving_epochs"],
                                                LR_MIN))


def graph_settings(config: dict) -> GraphSettings:
    return GraphSettings(k=config["graph"]["k"], radius=config["graph"]["radius"],
                         threshold=config["refinement"]["threshold"],
                         builder=config["graph"]["builder"],
                         filter_max_per_hit=config["filter"]["max_edges_per_hit"],
                         filter_max_gap=config["filter"]["max_logit_gap"])


def clustering_settings(config: dict) -> ClusteringSettings:
    block = config["hierarchical"]
    return ClusteringSettings(initial=block["initial"], threshold=block["threshold"],
                              stop_threshold=block["stop_threshold"],
                              min_size=block["min_size"], max_depth=block["max_depth"],
                              edge_threshold=block["edge_threshold"],
                              resplit_thresholds=tuple(block["resplit"]["thresholds"]),
                              resplit_max_hits=block["resplit"]["max_hits"],
                              same_layer_mm=block["same_layer_mm"],
                              best_links_first=block["best_links_first"],
                              one_link_per_side=block["one_link_per_side"],
                              aligned_mm=block["aligned_mm"],
                              aligned_across_mm=block["aligned_across_mm"],
                              recluster_max_hits=block["recluster"]["max_hits"],
                              recluster_min_probability=block["recluster"]["min_probability"])


def baseline_settings(config: dict) -> BaselineSettings:
    block = config["baselines"]
    return BaselineSettings(**{**block, "helix_z0": tuple(block["helix_z0"])})
