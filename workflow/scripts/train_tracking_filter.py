from hepclust.io.jsonio import read_json, write_json
from hepclust.tracking.checkpoints import load_graphs, save_graphs, save_module
from hepclust.tracking.events import read_events
from hepclust.tracking.stages import filtered_graphs, fit_edge_filter, tracking_events
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings = snakemake.params.settings
    device = torch_device(snakemake.params.device, snakemake.threads)
    train = read_json(snakemake.input.split)["train"]
    tables = read_events(snakemake.input.hits, snakemake.input.particles, train)
    candidates = load_graphs(snakemake.input.graphs, train)
    learn = train[: settings["events"]]
    model, arguments, history = fit_edge_filter(
        tracking_events(tables[: len(learn)]), [candidates[e] for e in learn],
        settings["hidden"], settings["epochs"], settings["lr"], settings["efficiency"],
        snakemake.params.seed, device, settings["hit_hidden"])
    final = history[-1]
    print(f"filter threshold {final['threshold']:.3f}: keeps {final['kept_fraction']:.3f} of "
          f"the training edges, {final['efficiency']:.4f} of the true ones")
    save_module(snakemake.output.model, "filter", model, arguments, history)
    write_json(history, snakemake.output.history)
    graphs, rows = filtered_graphs(model, tables, candidates, device,
                                   settings["max_edges_per_hit"])
    save_graphs(snakemake.output.graphs, graphs)
    write_json(rows, snakemake.output.edges)
