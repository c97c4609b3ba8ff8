from hepclust.io.jsonio import write_json
from hepclust.ucluster.jets import MASS_CLASSES, load_arrays, pretrain, save_model
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, seed = snakemake.params.settings, int(snakemake.wildcards.seed)
    device = torch_device(snakemake.params.device, snakemake.threads)
    model, history = pretrain(load_arrays(snakemake.input.train), settings, seed, device,
                              snakemake.params.checkpoints)
    save_model(snakemake.output.model, model, settings, MASS_CLASSES, history=history)
    write_json(history, snakemake.output.history)
