from hepclust.io.jsonio import read_json
from hepclust.report.jet_clustering import plot_accuracy, plot_roc, plot_tsne
from hepclust.report.plots import save_figure
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    metrics = read_json(snakemake.input.metrics)
    save_figure(plot_roc(metrics), snakemake.output.roc)
    save_figure(plot_tsne(load_arrays(snakemake.input.embeddings), metrics["seed"],
                          metrics["classes"]), snakemake.output.tsne)
    save_figure(plot_accuracy(metrics), snakemake.output.accuracy)
