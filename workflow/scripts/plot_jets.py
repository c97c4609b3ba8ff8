from hepclust.io.parquet import read_table
from hepclust.io.schema import JETS
from hepclust.report.plots import plot_jet_mass, save_figure
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    jets = read_table(snakemake.input[0], JETS, columns=["jet_mass", "label"])
    save_figure(plot_jet_mass(jets), snakemake.output[0])
