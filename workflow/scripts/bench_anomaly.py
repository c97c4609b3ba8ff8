from hepclust.bench import anomaly_benchmark
from hepclust.io.jsonio import write_json
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    write_json(anomaly_benchmark(list(snakemake.input.benchmarks),
                                 list(snakemake.input.histories)), snakemake.output[0])
