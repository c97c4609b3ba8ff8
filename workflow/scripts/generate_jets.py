from hepclust.generate.boosted_jets import generate_boosted_jets
from hepclust.generate.pythia import shard_seed
from hepclust.io.jsonio import write_json
from hepclust.io.parquet import write_table
from hepclust.io.schema import JETS
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    process, shard = snakemake.wildcards.jet_process, int(snakemake.wildcards.shard)
    settings = snakemake.params.settings
    seed = shard_seed(snakemake.params.seed, "jets", process, shard)
    table, stats = generate_boosted_jets(
        process,
        snakemake.params.n_jets,
        seed,
        pthat_min=settings["pthat_min"],
        pthat_max=settings["pthat_max"],
        pt_min=settings["pt_min"],
        pt_max=settings["pt_max"],
        radius=settings["radius"],
        max_constituents=settings["max_constituents"],
        mpi=settings["mpi"],
    )
    write_table(table, snakemake.output.table, JETS)
    write_json({**stats.as_dict(), "process": process, "shard": shard, "pythia_seed": seed},
               snakemake.output.stats)
