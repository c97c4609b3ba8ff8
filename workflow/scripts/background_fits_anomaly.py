from hepclust.anomaly.search import search_both
from hepclust.anomaly.settings import SearchSettings
from hepclust.io.jsonio import read_json, write_json
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings = SearchSettings.from_config(snakemake.params.settings)
    seed = int(snakemake.wildcards.seed)
    fits = search_both(load_arrays(snakemake.input.clusters),
                       settings.scan(read_json(snakemake.input.fit_range)),
                       settings.background_model, seed)
    write_json({"k": int(snakemake.wildcards.k), "seed": seed, **fits}, snakemake.output[0])
