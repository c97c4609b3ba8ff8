from hepclust.anomaly.search import inject
from hepclust.anomaly.settings import SearchSettings
from hepclust.io.jsonio import read_json, write_json
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings = SearchSettings.from_config(snakemake.params.settings)
    data = read_json(snakemake.input.fits)["signal"]["clusters"]
    upcrossings = [(row.get("trials") or {}).get("upcrossings") for row in data]
    points = inject(load_arrays(snakemake.input.clusters),
                    settings.scan(read_json(snakemake.input.fit_range)),
                    settings.background_model, snakemake.params.settings["injection_fractions"],
                    int(snakemake.wildcards.seed), upcrossings)
    write_json({"seed": int(snakemake.wildcards.seed), "model": settings.background_model,
                "points": points}, snakemake.output[0])
