from hepclust.io.jsonio import read_json, write_json
from hepclust.ucluster.evaluation import combine_seeds
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    write_json(combine_seeds([read_json(p) for p in snakemake.input]), snakemake.output[0])
