from hepclust.io.jsonio import write_json
from hepclust.tracking.checkpoints import load_module, save_module
from hepclust.tracking.inputs import training_graph_events
from hepclust.tracking.settings import clustering_settings
from hepclust.tracking.stages import cluster_events, fit_split
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, inputs = snakemake.params.settings, snakemake.input
    device = torch_device(snakemake.params.device, snakemake.threads)
    clustering = clustering_settings(settings)
    tables, events = training_graph_events(inputs.hits, inputs.particles, inputs.split,
                                           inputs.embedding, inputs.candidates, inputs.refined,
                                           inputs.union_order,
                                           clustering, device)
    gnn = load_module(inputs.gnn, "gnn", device)
    block = settings["hierarchical"]
    split, arguments, history = fit_split(
        cluster_events(gnn, events, tables, clustering), block["hidden"], block["layers"],
        block["split_epochs"], block["split_lr"], clustering, snakemake.params.seed, device)
    save_module(snakemake.output.model, "split", split, arguments, history)
    write_json(history, snakemake.output.history)
