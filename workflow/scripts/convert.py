from hepclust.io.formats import convert
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    convert(snakemake.input[0], snakemake.output[0], max_events=snakemake.params.max_events)
