"""`hepclust track`: the trained clustering GNN on any TrackML event, outside the workflow.

The models are the workflow's (results/tracking/models: the embedding, the edge filter,
the refinement, the fine-tuned GNN, Split and Stop, the learned layer pairs and the link
scorer), the graph and clustering settings those of the config's ``tracking_clustering``
section that trained them.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml

from hepclust.errors import InputError
from hepclust.tracking.hit_features import TrackingEvent
from hepclust.tracking.inputs import load_models
from hepclust.tracking.pipeline import reconstruct
from hepclust.tracking.settings import clustering_settings, graph_settings

MODEL_FILES = ("embedding.pt", "refinement.pt", "gnn_tuned.pt", "split_tuned.pt",
               "stop_tuned.pt", "layer_pairs.pt")
LINKS_FILE = "links.pt"  # the union's order, where the config turns it on
FILTER_FILE = "filter.pt"  # the edge filter, where the config turns it on


def tracking_config(path: str | Path) -> dict:
    """The ``tracking_clustering`` section of a hepclust config file."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "no such file")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InputError(path, f"not a readable YAML file ({err})") from err
    if not isinstance(config, dict) or "tracking_clustering" not in config:
        raise InputError(path, "has no tracking_clustering section")
    return config["tracking_clustering"]


def track_hits(hits, models_dir: str | Path, config: dict, device: str = "cpu",
               source: str | Path = "hits") -> np.ndarray:
    """The track id of each hit of one event's hits table, from the trained models in
    `models_dir` with the graph and clustering settings of `config`."""
    models_dir = Path(models_dir)
    paths = [models_dir / name for name in MODEL_FILES]
    links = models_dir / LINKS_FILE if config["links"]["enabled"] else None
    edge_filter = models_dir / FILTER_FILE if config["filter"]["enabled"] else None
    models = load_models(*paths, device=torch.device(device), links=links,
                         edge_filter=edge_filter)
    event = TrackingEvent.from_hits(hits, source)
    found = reconstruct(event, models, graph_settings(config), clustering_settings(config),
                        device)
    return found.track_id


def submission_table(hit_id: np.ndarray, track_id: np.ndarray,
                     event_id: int | None) -> pd.DataFrame:
    """TrackML's submission: (event_id,) hit_id, track_id (from 1)."""
    table = pd.DataFrame({"hit_id": hit_id, "track_id": np.asarray(track_id) + 1})
    if event_id is not None:
        table.insert(0, "event_id", np.full(len(table), event_id, dtype=np.int64))
    return table
