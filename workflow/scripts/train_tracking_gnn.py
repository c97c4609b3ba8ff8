from hepclust.io.jsonio import write_json
from hepclust.tracking.checkpoints import save_module
from hepclust.tracking.inputs import training_graph_events
from hepclust.tracking.settings import clustering_settings
from hepclust.tracking.stages import fit_gnn
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, inputs = snakemake.params.settings, snakemake.input
    device = torch_device(snakemake.params.device, snakemake.threads)
    _, events = training_graph_events(inputs.hits, inputs.particles, inputs.split,
                                      inputs.embedding, inputs.candidates, inputs.refined,
                                      inputs.union_order,
                                      clustering_settings(settings), device)
    gnn = settings["gnn"]
    model, arguments, history = fit_gnn(
        events, gnn["hidden"], gnn["layers"], gnn["output"], gnn["kernel_hidden"], gnn["aggr"],
        gnn["epochs"], gnn["lr"], gnn["margin"], gnn["edge_loss_weight"], gnn["sectors"],
        snakemake.params.seed, device)
    save_module(snakemake.output.model, "gnn", model, arguments, history)
    write_json(history, snakemake.output.history)
