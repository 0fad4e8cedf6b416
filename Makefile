# lumbarlab — the two set-up commands of the README live here.
#   make lab    fresh machine → JupyterLab on notebooks/00_start_here.ipynb (localhost, token on)
#   make test   fresh machine → the full test run (what .ci/run runs)
# Both create the virtual environment .venv at the repo root when it is missing.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Exact versions for a reproducible install; set CONSTRAINTS= (empty) to let pip resolve,
# e.g. after installing a CUDA build of torch into .venv yourself.
CONSTRAINTS ?= constraints/ci.txt
PIP_C := $(if $(CONSTRAINTS),-c $(CONSTRAINTS),)
PYTEST_FLAGS ?=
NB_TIMEOUT ?= 300

.PHONY: install lab test test-fast curriculum bench lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml $(CONSTRAINTS)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(PIP_C) -e ".[lab,dev]"
	touch $@

install: $(VENV)/.installed

lab: install
	$(BIN)/lumbarlab lab

# Unit tests, the lab server, every notebook under papermill (FAST), then nbval over the notebooks.
test: install
	$(BIN)/python -m pytest -q -p no:cacheprovider --timeout=900 $(PYTEST_FLAGS) tests
	LUMBARLAB_FAST=1 $(BIN)/python -m pytest -q -p no:cacheprovider --nbval-lax \
		--nbval-cell-timeout=$(NB_TIMEOUT) --timeout=1800 notebooks

test-fast: install
	$(BIN)/python -m pytest -q -m "not notebook and not server and not slow" tests

curriculum: install
	$(BIN)/lumbarlab curriculum --out build/curriculum --timeout $(NB_TIMEOUT)

bench: install
	mkdir -p benchmarks/results
	$(BIN)/python benchmarks/bench_phantom.py --out benchmarks/results/bench_phantom.json
	$(BIN)/python benchmarks/bench_metric_explorer.py --out benchmarks/results/bench_metric_explorer.json
	$(BIN)/python benchmarks/bench_infer.py --out benchmarks/results/bench_infer_cpu.json
	$(BIN)/python benchmarks/bench_cam.py --out benchmarks/results/bench_cam_cpu.json
	$(BIN)/python benchmarks/bench_label_map.py --out benchmarks/results/bench_label_map.json
	$(BIN)/python benchmarks/bench_panels.py --out benchmarks/results/bench_panels.json
	$(BIN)/python benchmarks/bench_compact.py --out benchmarks/results/bench_compact.json

lint: install
	$(BIN)/ruff check lumbarlab data_fetch tests benchmarks

clean:
	rm -rf build .pytest_cache
