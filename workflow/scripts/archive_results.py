import logging

from hepclust.archive import create_archive
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    path = create_archive("results", snakemake.params.configs, "archives",
                          checkout=snakemake.params.checkout)
    logging.getLogger("archive").info("wrote %s", path)
