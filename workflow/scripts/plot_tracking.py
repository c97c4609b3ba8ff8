from hepclust.io.parquet import read_table
from hepclust.io.schema import TRACKML_EVENT_HITS, TRACKML_EVENT_PARTICLES
from hepclust.report.plots import save_figure
from hepclust.report.tracking_data import plot_tracking_event, plot_validation, validation
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    hits = read_table(snakemake.input.hits, TRACKML_EVENT_HITS)
    particles = read_table(snakemake.input.particles, TRACKML_EVENT_PARTICLES)
    save_figure(plot_tracking_event(hits, particles), snakemake.output.event)
    save_figure(plot_validation(validation(hits, particles), hits, particles),
                snakemake.output.validation)
