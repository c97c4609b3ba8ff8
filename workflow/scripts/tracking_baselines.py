import torch

from hepclust.io.jsonio import read_json, write_json
from hepclust.tracking.events import read_events
from hepclust.tracking.inference import compare_events
from hepclust.tracking.inputs import load_models
from hepclust.tracking.settings import baseline_settings, clustering_settings, graph_settings
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, inputs = snakemake.params.settings, snakemake.input
    device = torch_device(snakemake.params.device, snakemake.threads)
    untuned = load_models(inputs.embedding, inputs.refinement, inputs.gnn, inputs.split_model,
                          inputs.stop, inputs.layer_pairs, device, inputs.get("links"),
                          inputs.get("edge_filter"))
    tables = read_events(inputs.hits, inputs.particles, read_json(inputs.split)["test"])
    outputs = torch.load(inputs.outputs, map_location="cpu", weights_only=True)
    write_json(compare_events(tables, outputs, baseline_settings(settings), untuned,
                              graph_settings(settings), clustering_settings(settings), device),
               snakemake.output[0])
