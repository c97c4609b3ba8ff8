from hepclust.archive import software_versions
from hepclust.io.jsonio import read_json
from hepclust.io.parquet import atomic_path
from hepclust.report.headline import anomaly_rows, jets_rows, summary_page, tracking_rows
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    rows = (jets_rows(read_json(snakemake.input.jets))
            + anomaly_rows(read_json(snakemake.input.anomaly))
            + tracking_rows(read_json(snakemake.input.tracking)))
    page = summary_page(rows, dict(snakemake.params.config), software_versions())
    with atomic_path(snakemake.output[0]) as tmp:
        tmp.write_text(page, encoding="utf-8")
