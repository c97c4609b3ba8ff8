from hepclust.bench import tracking_data_benchmark
from hepclust.generate.tracking_events import EventSettings
from hepclust.io.jsonio import write_json
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings = EventSettings.from_config(snakemake.params.settings)
    write_json(tracking_data_benchmark(settings, snakemake.params.seed), snakemake.output[0])
