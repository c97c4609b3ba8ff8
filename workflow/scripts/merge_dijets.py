from hepclust.io.parquet import merge_shuffled, write_table
from hepclust.io.schema import DIJETS
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    table = merge_shuffled(list(snakemake.input), DIJETS, snakemake.params.seed)
    write_table(table, snakemake.output[0], DIJETS)
