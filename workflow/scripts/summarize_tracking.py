from hepclust.bench import generation_rate
from hepclust.io.jsonio import write_json
from hepclust.io.parquet import read_table
from hepclust.io.schema import TRACKML_EVENT_HITS, TRACKML_EVENT_PARTICLES
from hepclust.report.tracking_data import summarize_tracking
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    hits = read_table(snakemake.input.hits, TRACKML_EVENT_HITS)
    particles = read_table(snakemake.input.particles, TRACKML_EVENT_PARTICLES)
    summary = summarize_tracking(hits, particles)
    if snakemake.input.stats:
        summary["simulated_events_per_s_per_core"] = generation_rate(
            snakemake.input.stats)["per_s_per_core"]
    write_json(summary, snakemake.output[0])
