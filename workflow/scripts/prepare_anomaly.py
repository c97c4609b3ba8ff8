from hepclust.anomaly.dijets import Splits, prepare
from hepclust.io.jsonio import write_json
from hepclust.io.parquet import read_table
from hepclust.io.schema import DIJETS
from hepclust.ucluster.jets import save_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    source = snakemake.input[0]
    splits, standardizers = prepare(read_table(source, DIJETS),
                                    Splits.from_config(snakemake.params.settings),
                                    snakemake.params.radius, snakemake.params.seed, source)
    for split, arrays in splits.items():
        save_arrays(snakemake.output[split], arrays)
    write_json(standardizers, snakemake.output.standardizer)
