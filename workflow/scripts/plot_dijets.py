from hepclust.io.parquet import read_table
from hepclust.io.schema import DIJETS
from hepclust.report.plots import plot_dijet_jets, plot_mjj, save_figure
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    columns = ["mjj", "label", "jet1_mass", "jet2_mass", "jet1_tau21", "jet2_tau21"]
    dijets = read_table(snakemake.input[0], DIJETS, columns=columns)
    save_figure(plot_mjj(dijets), snakemake.output.mjj)
    save_figure(plot_dijet_jets(dijets), snakemake.output.jets)
