from hepclust.io.jsonio import read_json
from hepclust.report.plots import save_figure
from hepclust.report.tracking_clustering import plot_scaling
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    save_figure(plot_scaling(read_json(snakemake.input[0])), snakemake.output[0])
