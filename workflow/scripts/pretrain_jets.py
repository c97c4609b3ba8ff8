from hepclust.ucluster.launch import run_stage
from hepclust.workflow import logged_to

with logged_to(snakemake.log[0]):
    run_stage("jets-pretrain", snakemake.params.processes, train=snakemake.input.train,
              model=snakemake.output.model, history=snakemake.output.history,
              checkpoints=snakemake.params.checkpoints, settings=snakemake.params.settings,
              seed=int(snakemake.wildcards.seed), device=snakemake.params.device,
              threads=snakemake.threads, log=snakemake.log[0])
