from hepclust.io.jsonio import read_json, write_json
from hepclust.tracking.checkpoints import load_module, save_graphs
from hepclust.tracking.events import read_events
from hepclust.tracking.settings import graph_settings
from hepclust.tracking.stages import candidate_graphs
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    device = torch_device(snakemake.params.device, snakemake.threads)
    train = read_json(snakemake.input.split)["train"]
    tables = read_events(snakemake.input.hits, snakemake.input.particles, train)
    embedding = load_module(snakemake.input.embedding, "embedding", device)
    graphs, rows = candidate_graphs(embedding, tables, graph_settings(snakemake.params.settings),
                                    device)
    save_graphs(snakemake.output.graphs, graphs)
    write_json(rows, snakemake.output.edges)
