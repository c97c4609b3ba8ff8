from hepclust.bench import jets_benchmark
from hepclust.io.jsonio import write_json
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    torch_device("cpu", snakemake.threads)
    result = jets_benchmark(snakemake.input.model, snakemake.input.test,
                            list(snakemake.input.histories),
                            train_batch_size=snakemake.params.batch_size,
                            pooling=snakemake.params.pooling,
                            benchmarks=list(snakemake.input.benchmarks),
                            cores=int(snakemake.params.cores))
    write_json(result, snakemake.output[0])
