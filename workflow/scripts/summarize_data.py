from hepclust.io.jsonio import write_json
from hepclust.io.parquet import read_table
from hepclust.io.schema import DIJETS, JETS
from hepclust.report.summary import summarize_dijets, summarize_jets
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    jets = read_table(snakemake.input.jets, JETS)
    dijets = read_table(snakemake.input.dijets, DIJETS)
    write_json({"jets": summarize_jets(jets), "dijets": summarize_dijets(dijets)},
               snakemake.output[0])
