from hepclust.anomaly.summary import combine
from hepclust.io.jsonio import read_json, write_json
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings = snakemake.params.settings
    metrics = combine([read_json(p) for p in snakemake.input.summaries],
                      [read_json(p) for p in snakemake.input.fits],
                      settings["train_events"], settings["scan_clusters"],
                      calibration=read_json(snakemake.input.calibration),
                      injections=[read_json(p) for p in snakemake.input.injections],
                      fit_range=read_json(snakemake.input.fit_range),
                      background_model=settings["background_model"])
    write_json(metrics, snakemake.output[0])
