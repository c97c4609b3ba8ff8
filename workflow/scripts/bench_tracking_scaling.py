from hepclust.generate.tracking_events import EventSettings
from hepclust.io.jsonio import write_json
from hepclust.tracking.inputs import load_models
from hepclust.tracking.scaling import scaling_benchmark
from hepclust.tracking.settings import clustering_settings, graph_settings
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, inputs = snakemake.params.settings, snakemake.input
    device = torch_device(snakemake.params.device, snakemake.threads)
    models = load_models(inputs.embedding, inputs.refinement, inputs.gnn, inputs.split_model,
                         inputs.stop, inputs.layer_pairs, device, inputs.get("links"),
                         inputs.get("edge_filter"))
    scaling = settings["scaling"]
    write_json(scaling_benchmark(models, EventSettings.from_config(snakemake.params.generate),
                                 scaling["densities"], scaling["events"], snakemake.params.seed,
                                 graph_settings(settings), clustering_settings(settings),
                                 device), snakemake.output[0])
