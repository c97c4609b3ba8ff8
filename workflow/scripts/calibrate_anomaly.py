from hepclust.anomaly.calibration import calibrate_clusterings
from hepclust.anomaly.settings import SearchSettings
from hepclust.io.jsonio import read_json, write_json
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings = SearchSettings.from_config(snakemake.params.settings)
    write_json(calibrate_clusterings(
        [load_arrays(path) for path in snakemake.input.clusters],
        [read_json(path) for path in snakemake.input.summaries],
        settings.scan(read_json(snakemake.input.fit_range)),
        snakemake.params.settings["calibration_toys"], snakemake.params.seed),
        snakemake.output[0])
