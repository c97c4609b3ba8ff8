import numpy as np

from hepclust.io.parquet import write_table
from hepclust.io.schema import TRACKML_EVENT_HITS, TRACKML_EVENT_PARTICLES
from hepclust.io.trackml import find_events, read_trackml_events
from hepclust.tracking.subsample import subsample_events
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    prefixes = [prefix for source in snakemake.input for prefix in find_events(source)]
    hits, particles = read_trackml_events(prefixes)
    fraction = snakemake.params.subsample_fraction
    if fraction < 1:
        rng = np.random.default_rng([snakemake.params.seed, 3])
        hits, particles = subsample_events(hits, particles, fraction, rng)
    write_table(hits, snakemake.output.hits, TRACKML_EVENT_HITS)
    write_table(particles, snakemake.output.particles, TRACKML_EVENT_PARTICLES)
