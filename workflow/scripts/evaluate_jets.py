from hepclust.io.jsonio import write_json
from hepclust.ucluster.jets import evaluate, load_arrays, load_model, save_arrays
from hepclust.workflow import logged_to, torch_device

with logged_to(snakemake.log[0]):
    settings, seed = snakemake.params.settings, int(snakemake.wildcards.seed)
    device = torch_device(snakemake.params.device, snakemake.threads)
    pretrained, _ = load_model(snakemake.input.pretrained, device)
    ucluster, centroids = load_model(snakemake.input.ucluster, device)
    supervised, _ = load_model(snakemake.input.supervised, device)
    metrics, pictures = evaluate(pretrained, ucluster, centroids, supervised,
                                 load_arrays(snakemake.input.train),
                                 load_arrays(snakemake.input.test),
                                 clusters=settings["clusters"], classes=settings["classes"],
                                 knn_neighbours=settings["knn_neighbours"],
                                 tsne_jets=settings["tsne_jets"],
                                 batch_size=settings["batch_size"], seed=seed, device=device)
    write_json(metrics, snakemake.output.metrics)
    save_arrays(snakemake.output.embeddings, pictures)
