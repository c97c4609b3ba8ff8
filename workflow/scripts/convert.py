import logging

from hepclust.io.formats import convert
from hepclust.io.jsonio import write_json
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    conversion = convert(snakemake.input[0], snakemake.output.table,
                         max_events=snakemake.params.max_events)
    logging.info(conversion.report())
    write_json(conversion.as_dict(), snakemake.output.summary)
