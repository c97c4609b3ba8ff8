import torch

from hepclust.io.jsonio import read_json, write_json
from hepclust.tracking.checkpoints import load_graphs, save_graphs, save_module
from hepclust.tracking.events import read_events
from hepclust.tracking.stages import fit_links
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    links, inputs = snakemake.params.links, snakemake.input
    train = read_json(inputs.split)["train"]
    model, arguments, history, scores = fit_links(
        read_events(inputs.hits, inputs.particles, train), load_graphs(inputs.refined, train),
        load_graphs(inputs.probabilities, train), links["hidden"], links["epochs"], links["lr"],
        snakemake.params.seed)
    save_module(snakemake.output.model, "links", model, arguments, history)
    save_graphs(snakemake.output.scores, scores, torch.float32)
    write_json(history, snakemake.output.history)
