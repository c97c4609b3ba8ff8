from importlib.metadata import version

from hepclust.generate.tracking_events import EventSettings, simulate_events
from hepclust.io.jsonio import write_json
from hepclust.io.parquet import atomic_directory
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    first, stop = snakemake.params.event_range
    settings = EventSettings.from_config(snakemake.params.settings)
    with atomic_directory(snakemake.output.events) as directory:
        stats = simulate_events(range(first, stop), snakemake.params.seed, settings, directory)
    write_json({**stats.as_dict(), "process": "tracking", "shard": int(snakemake.wildcards.shard),
                "first_event": first, "seed": snakemake.params.seed,
                "source": settings.source, "density": settings.density,
                "pyacts": version("pyacts"), "pythia8mc": version("pythia8mc")},
               snakemake.output.stats)
