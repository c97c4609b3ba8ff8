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

.PHONY: all install run report test lint bench clean
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

bench: install
	$(SNAKEMAKE) bench --configfile config.yaml

clean:
	rm -rf results/* .snakemake .test/results
	touch results/.gitkeep
