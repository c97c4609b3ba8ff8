from hepclust.anomaly.dijets import assign, first, load_model, load_space
from hepclust.anomaly.summary import clustering_summary
from hepclust.io.jsonio import write_json
from hepclust.ucluster.jets import load_arrays, save_arrays
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, wildcards = snakemake.params.settings, snakemake.wildcards
    device = torch_device(snakemake.params.device, snakemake.threads)
    model, centroids = load_model(snakemake.input.model, device)
    space = load_space(snakemake.input.model)
    samples = {"eval": first(load_arrays(snakemake.input.eval), snakemake.params.eval_events),
               "test": load_arrays(snakemake.input.test)}
    assigned = {split: assign(model, centroids, arrays, settings["batch_size"], device, space)
                for split, arrays in samples.items()}
    summary = clustering_summary(assigned["eval"]["label"], assigned["eval"]["cluster"],
                                 len(centroids), settings["min_cluster_events"],
                                 assigned["test"]["label"], assigned["test"]["cluster"])
    summary.update(train_events=int(wildcards.events), seed=int(wildcards.seed))
    write_json(summary, snakemake.output.summary)
    save_arrays(snakemake.output.clusters, {
        "centroids": centroids.cpu().numpy(),
        **{f"{split}_{name}": values for split, arrays in assigned.items()
           for name, values in arrays.items()}})
