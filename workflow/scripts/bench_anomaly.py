from hepclust.bench import anomaly_benchmark
from hepclust.io.jsonio import write_json
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    write_json(anomaly_benchmark(list(snakemake.input.benchmarks),
                                 list(snakemake.input.histories),
                                 scan_runs=list(snakemake.params.scan_runs),
                                 cores=int(snakemake.params.cores)), snakemake.output[0])
