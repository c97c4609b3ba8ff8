import pandas as pd

from hepclust.io.jsonio import read_json
from hepclust.report.plots import save_figure
from hepclust.report.tracking_clustering import plot_event_tracks, plot_rates, plot_scores
from hepclust.tracking.events import read_events
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    metrics = read_json(snakemake.input.metrics)
    save_figure(plot_scores(metrics), snakemake.output.scores)
    save_figure(plot_rates(metrics), snakemake.output.rates)
    first = read_json(snakemake.input.split)["test"][0]
    (event,) = read_events(snakemake.input.hits, snakemake.input.particles, [first])
    found = pd.read_csv(f"{snakemake.input.submissions}/{event.name}.csv")
    save_figure(plot_event_tracks(event.hits, found), snakemake.output.event)
