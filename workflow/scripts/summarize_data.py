from hepclust.io.jsonio import read_json, write_json
from hepclust.io.parquet import read_table
from hepclust.io.schema import DIJETS, JETS
from hepclust.report.summary import summarize_conversions, summarize_dijets, summarize_jets
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    jets = read_table(snakemake.input.jets, JETS)
    dijets = read_table(snakemake.input.dijets, DIJETS)
    conversions = {task: [read_json(p) for p in snakemake.input[f"{task}_conversions"]]
                   for task in ("jet", "dijet")}
    write_json({"jets": summarize_jets(jets) | summarize_conversions(conversions["jet"]),
                "dijets": summarize_dijets(dijets) | summarize_conversions(conversions["dijet"])},
               snakemake.output[0])
