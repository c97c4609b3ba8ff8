from hepclust.io.jsonio import write_json
from hepclust.tracking.checkpoints import load_module, module_arguments, save_module
from hepclust.tracking.inputs import training_graph_events
from hepclust.tracking.settings import clustering_settings
from hepclust.tracking.stages import cluster_events, continue_stop, fine_tune
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, inputs, output = snakemake.params.settings, snakemake.input, snakemake.output
    device = torch_device(snakemake.params.device, snakemake.threads)
    clustering, block = clustering_settings(settings), settings["end_to_end"]
    tables, events = training_graph_events(inputs.hits, inputs.particles, inputs.split,
                                           inputs.embedding, inputs.candidates, inputs.refined,
                                           inputs.union_order,
                                           clustering, device)
    gnn = load_module(inputs.gnn, "gnn", device)
    split = load_module(inputs.split_model, "split", device)
    history = fine_tune(gnn, split, events, block["epochs"], block["lr"], block["hinge_weight"],
                        settings["gnn"]["margin"], clustering, snakemake.params.seed, device)
    # Split has changed, so the Stop module goes on learning from its new trees.
    stop = load_module(inputs.stop, "stop", device)
    stop_history = continue_stop(stop, split, cluster_events(gnn, events, tables, clustering),
                                 block["stop_epochs"], settings["hierarchical"]["stop_lr"],
                                 clustering, snakemake.params.seed, device)
    save_module(output.gnn, "gnn", gnn, module_arguments(inputs.gnn), history)
    save_module(output.split_model, "split", split, module_arguments(inputs.split_model), history)
    save_module(output.stop, "stop", stop, module_arguments(inputs.stop), stop_history)
    write_json(history, output.history)
    write_json(stop_history, output.stop_history)
