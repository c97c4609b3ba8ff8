from hepclust.anomaly.dijets import assigned_split
from hepclust.io.jsonio import read_json
from hepclust.report import anomaly as figures
from hepclust.report.plots import save_figure
from hepclust.ucluster.jets import load_arrays
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    metrics, out = read_json(snakemake.input.metrics), snakemake.output
    evaluated = {name: assigned_split(load_arrays(snakemake.input[name]), "eval")
                 for name in ("embedding", "features", "best")}
    # Figs. 8 and 9 show the first seed's clusters at the scan's K, as the embeddings.
    shown = next(fit for fit in metrics["fits"] if fit["k"] == metrics["scan_clusters"])
    save_figure(figures.plot_embedding(evaluated["embedding"],
                                       snakemake.params.settings["embedding_events"],
                                       shown["seed"]), out.embedding)
    save_figure(figures.plot_max_sb(metrics), out.max_sb)
    save_figure(figures.plot_significance(metrics), out.significance)
    save_figure(figures.plot_best_cluster_mjj(evaluated["best"], shown["max_sb_cluster"]),
                out.mjj)
    save_figure(figures.plot_fit(shown["signal"], shown["max_sb_cluster"]), out.fit)
    save_figure(figures.plot_global_features(evaluated["features"]), out.features)
    save_figure(figures.plot_p_values(metrics), out.p_values)
    save_figure(figures.plot_calibration(read_json(snakemake.input.calibration)),
                out.calibration)
    save_figure(figures.plot_injection(metrics), out.injection)
    save_figure(figures.plot_fit_range(read_json(snakemake.input.fit_range)), out.fit_range)
