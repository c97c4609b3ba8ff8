from hepclust.io.jsonio import write_json
from hepclust.io.parquet import read_table
from hepclust.io.schema import JETS
from hepclust.ucluster.features import select_classes
from hepclust.ucluster.jets import prepare, save_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    settings = snakemake.params.settings
    jets, summary = select_classes(read_table(snakemake.input[0], JETS), settings["classes"],
                                   snakemake.input[0])
    train, test, standardizer = prepare(jets, max_particles=settings["max_particles"],
                                        train_fraction=settings["train_fraction"],
                                        mass_window=tuple(settings["mass_window"]),
                                        seed=snakemake.params.seed)
    save_arrays(snakemake.output.train, train)
    save_arrays(snakemake.output.test, test)
    write_json(standardizer.to_dict(), snakemake.output.standardizer)
    write_json({**summary, "train_jets": len(train["label"]), "test_jets": len(test["label"])},
               snakemake.output.summary)
