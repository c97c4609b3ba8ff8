from hepclust.anomaly.settings import FitRangeSettings, fit_range
from hepclust.io.jsonio import write_json
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings = FitRangeSettings.from_config(snakemake.params.settings)
    write_json(fit_range(load_arrays(snakemake.input.train)["mjj"], settings),
               snakemake.output[0])
