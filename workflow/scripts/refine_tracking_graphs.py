import torch

from hepclust.io.jsonio import read_json, write_json
from hepclust.tracking.checkpoints import load_graphs, load_module, save_graphs
from hepclust.tracking.events import read_events
from hepclust.tracking.stages import refined_graphs
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    device = torch_device(snakemake.params.device, snakemake.threads)
    train = read_json(snakemake.input.split)["train"]
    tables = read_events(snakemake.input.hits, snakemake.input.particles, train)
    refinement = load_module(snakemake.input.refinement, "refinement", device)
    graphs, probabilities, rows = refined_graphs(
        refinement, tables, load_graphs(snakemake.input.graphs, train),
        snakemake.params.threshold, device)
    save_graphs(snakemake.output.graphs, graphs)
    save_graphs(snakemake.output.probabilities, probabilities, torch.float32)
    write_json(rows, snakemake.output.edges)
