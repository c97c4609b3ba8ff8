from hepclust.bench import data_benchmark
from hepclust.io.jsonio import write_json
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    result = data_benchmark(snakemake.input.jets, snakemake.input.jet_stats,
                            snakemake.input.dijet_stats)
    write_json(result, snakemake.output[0])
