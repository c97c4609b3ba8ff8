from hepclust.io.parquet import merge_shuffled, write_table
from hepclust.io.schema import JETS
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    table = merge_shuffled(list(snakemake.input), JETS, snakemake.params.seed)
    write_table(table, snakemake.output[0], JETS)
