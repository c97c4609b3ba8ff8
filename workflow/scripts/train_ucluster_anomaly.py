from hepclust.anomaly.dijets import (
    Network,
    Training,
    first,
    load_model,
    save_model,
    train_clustering,
)
from hepclust.io.jsonio import write_json
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, seed = snakemake.params.settings, int(snakemake.wildcards.seed)
    device = torch_device(snakemake.params.device, snakemake.threads)
    train = first(load_arrays(snakemake.input.train), int(snakemake.wildcards.events))
    model, _ = load_model(snakemake.input.pretrained, device)
    centroids, space, history = train_clustering(model, train, Training.from_config(settings),
                                                 int(snakemake.wildcards.k), seed, device,
                                                 snakemake.params.checkpoints)
    save_model(snakemake.output.model, model, Network.from_config(settings), centroids, history,
               space)
    write_json(history, snakemake.output.history)
