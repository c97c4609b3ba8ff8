from hepclust.io.jsonio import read_json, write_json
from hepclust.tracking import stages
from hepclust.tracking.checkpoints import load_module, save_graphs
from hepclust.tracking.events import read_events
from hepclust.tracking.layer_graph import learn_layer_pairs
from hepclust.tracking.settings import graph_settings
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    device = torch_device(snakemake.params.device, snakemake.threads)
    train = read_json(snakemake.input.split)["train"]
    tables = read_events(snakemake.input.hits, snakemake.input.particles, train)
    embedding = load_module(snakemake.input.embedding, "embedding", device)
    layers = snakemake.params.settings["graph"]["layer_pairs"]
    layer_pairs = learn_layer_pairs(stages.tracking_events(tables), layers["quantile"],
                                    layers["margin"], layers["min_count"],
                                    layers["lost_fraction"])
    print(f"{len(layer_pairs)} layer pairs learned from {len(tables)} training events")
    layer_pairs.save(snakemake.output.layer_pairs)
    graphs, rows = stages.candidate_graphs(
        embedding, tables, graph_settings(snakemake.params.settings), layer_pairs, device)
    save_graphs(snakemake.output.graphs, graphs)
    write_json(rows, snakemake.output.edges)
