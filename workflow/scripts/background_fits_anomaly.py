from hepclust.anomaly.search import SearchSettings, search_both
from hepclust.io.jsonio import write_json
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings, wildcards = snakemake.params.settings, snakemake.wildcards
    search_settings = SearchSettings.from_config(settings["mjj_low"], settings["mjj_high"],
                                                 settings["mjj_bins"], settings["signal_width"],
                                                 settings["refit_shape"])
    fits = search_both(load_arrays(snakemake.input.clusters), search_settings)
    write_json({"k": int(wildcards.k), "seed": int(wildcards.seed),
                "refit_shape": settings["refit_shape"], **fits}, snakemake.output[0])
