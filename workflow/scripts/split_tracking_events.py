from hepclust.io.jsonio import write_json
from hepclust.tracking.events import read_event_ids, split_events
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings = snakemake.params.settings
    split = split_events(read_event_ids(snakemake.input.hits), settings["train_events"],
                         settings["test_events"], snakemake.params.seed, snakemake.input.hits)
    write_json({**split, "seed": snakemake.params.seed}, snakemake.output[0])
