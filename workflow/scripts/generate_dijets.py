from hepclust.generate.dijets import generate_dijets
from hepclust.generate.pythia import shard_seed
from hepclust.io.jsonio import write_json
from hepclust.io.parquet import write_table
from hepclust.io.schema import DIJETS
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    process, shard = snakemake.wildcards.dijet_process, int(snakemake.wildcards.shard)
    settings = snakemake.params.settings
    seed = shard_seed(snakemake.params.seed, "dijets", process, shard)
    table, stats = generate_dijets(
        process,
        snakemake.params.n_events,
        seed,
        pthat_min=settings["pthat_min"],
        leading_pt_min=settings["leading_pt_min"],
        radius=settings["radius"],
        max_particles=settings["max_particles"],
        mpi=settings["mpi"],
    )
    write_table(table, snakemake.output.table, DIJETS)
    write_json({**stats.as_dict(), "process": process, "shard": shard, "pythia_seed": seed},
               snakemake.output.stats)
