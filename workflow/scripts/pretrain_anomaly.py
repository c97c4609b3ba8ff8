from hepclust.anomaly.dijets import Network, Training, first, pretrain, save_model
from hepclust.io.jsonio import write_json
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, seed = snakemake.params.settings, int(snakemake.wildcards.seed)
    device = torch_device(snakemake.params.device, snakemake.threads)
    train = first(load_arrays(snakemake.input.train), int(snakemake.wildcards.events))
    network = Network.from_config(settings)
    model, history = pretrain(train, network, Training.from_config(settings), seed, device,
                              snakemake.params.checkpoints)
    save_model(snakemake.output.model, model, network, history=history)
    write_json(history, snakemake.output.history)
