import torch

from hepclust.io.jsonio import read_json, write_json
from hepclust.io.parquet import atomic_directory, atomic_path
from hepclust.tracking.events import read_events
from hepclust.tracking.inference import infer_events
from hepclust.tracking.inputs import load_models
from hepclust.tracking.settings import clustering_settings, graph_settings
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, inputs, output = snakemake.params.settings, snakemake.input, snakemake.output
    device = torch_device(snakemake.params.device, snakemake.threads)
    models = load_models(inputs.embedding, inputs.refinement, inputs.gnn, inputs.split_model,
                         inputs.stop, inputs.layer_pairs, device, inputs.get("links"),
                         inputs.get("edge_filter"))
    tables = read_events(inputs.hits, inputs.particles, read_json(inputs.split)["test"])
    with atomic_directory(output.submissions) as submissions:
        results, outputs = infer_events(tables, models, graph_settings(settings),
                                        clustering_settings(settings), device, submissions)
    write_json(results, output.results)
    with atomic_path(output.outputs) as tmp:
        torch.save(outputs, tmp)
