"""hepclust: machine-learning clustering for particle physics as a Snakemake workflow."""

__version__ = "0.1.0"
