# The two commands of README.md: `make run` and `make test`. Both install what they
# need into .venv on first use.
#
# TORCH_SPEC is what pip installs for PyTorch before anything else. The default is the
# CPU build of this machine; on a GPU machine point it at a CUDA build, e.g.
#   make run TORCH_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126"
# The installed torch is then pinned, so no later step replaces it with another build.
PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
CORES ?= 2
VENV := .venv
BIN := $(VENV)/bin
SNAKEMAKE := $(BIN)/snakemake --cores $(CORES)

.PHONY: all install run report test lint bench clean test-slurm system-packages
all: run

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check $(TORCH_SPEC)
	$(BIN)/python -c "import torch; print('torch==' + torch.__version__)" > $(VENV)/constraints.txt
	$(BIN)/pip install --disable-pip-version-check -c $(VENV)/constraints.txt \
		--only-binary=pythia8mc,pyacts -e ".[dev]"
	touch $@

install: $(VENV)/.installed

run: install
	$(SNAKEMAKE) --configfile config.yaml
	$(MAKE) report

report: install
	$(SNAKEMAKE) --configfile config.yaml --report results/report.html

lint: install
	$(BIN)/ruff check src tests workflow
	$(BIN)/snakemake --lint --configfile config.yaml
	$(BIN)/snakemake --dry-run --quiet rules --configfile config.yaml

test: lint
	$(BIN)/pytest

# System packages some tests need (as root, from Debian): a single-node SLURM for
# tests/test_slurm.py (docs/slurm.md) and a headless Chromium that renders the report.
# Not the slurm-wlm metapackage: it pulls in 40 packages.
SYSTEM_PACKAGES := slurmctld slurmd slurm-client munge chromium-headless-shell

system-packages:
	dpkg -s $(SYSTEM_PACKAGES) >/dev/null 2>&1 || { apt-get update && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(SYSTEM_PACKAGES); }

# The SLURM test alone: it starts SLURM, runs the tiny workflow through it, stops it.
test-slurm: install system-packages
	$(BIN)/pytest -m slurm tests/test_slurm.py

bench: install
	$(SNAKEMAKE) bench --configfile config.yaml

clean:
	rm -rf results/* .snakemake .test/results
	touch results/.gitkeep
