from pathlib import Path

from hepclust.io.jsonio import read_json, write_json
from hepclust.tracking.evaluation import summarise_graphs
from hepclust.tracking.inference import tracking_summary
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    inputs = snakemake.input
    training_graphs = {"embedding": summarise_graphs(read_json(inputs.embedding_edges)),
                       "refined": summarise_graphs(read_json(inputs.refined_edges))}
    histories = {Path(p).stem.removesuffix("_history"): read_json(p) for p in inputs.histories}
    if inputs.get("filtered_edges") is not None:
        training_graphs["filtered"] = summarise_graphs(read_json(inputs.filtered_edges))
        histories["filter"] = read_json(inputs.filter_history)
    write_json(tracking_summary(read_json(inputs.results), read_json(inputs.baselines),
                                training_graphs, histories), snakemake.output[0])
