from hepclust.io.jsonio import read_json, write_json
from hepclust.tracking.checkpoints import load_graphs, save_module
from hepclust.tracking.events import read_events
from hepclust.tracking.settings import refinement_settings
from hepclust.tracking.stages import fit_refinement, tracking_events
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings = snakemake.params.settings
    device = torch_device(snakemake.params.device, snakemake.threads)
    train = read_json(snakemake.input.split)["train"][: settings["refinement"]["events"]]
    events = tracking_events(read_events(snakemake.input.hits, snakemake.input.particles, train))
    candidates = list(load_graphs(snakemake.input.graphs, train).values())
    model, arguments, history = fit_refinement(events, candidates, refinement_settings(settings),
                                               snakemake.params.seed, device)
    save_module(snakemake.output.model, "refinement", model, arguments, history)
    write_json(history, snakemake.output.history)
