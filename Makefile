# cxq_data: every user-facing action is a make target. The first target that needs Python creates
# .venv and installs the package with its extras; later runs reuse it (reinstalling when
# pyproject.toml changes).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CORES ?= 2
# profiles/local: keep going past a failed job, rerun what a killed run left incomplete, one Alpha Vantage
# request at a time
SNAKEMAKE := $(BIN)/snakemake --profile profiles/local --cores $(CORES)
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: help install demo test test-fast ingest process db all validate options bench lint clean-data

help:
	@echo "make demo      # create .venv, install, run the whole main job offline on an embedded sample"
	@echo "make test      # the test suite (CI runs exactly this)"
	@echo "make ingest    # fetch the configured universe (config/config.yaml) into data/raw"
	@echo "make process   # today's fetches (if not done) + raw -> Parquet lake (data/processed)"
	@echo "make db        # serving layer + (re)create the DuckDB views in data/cxq.duckdb"
	@echo "make all       # ingest + process + db"
	@echo "make validate  # data-quality reports per symbol; exit 1 on an error finding"
	@echo "make options   # Databento OPRA batch ZIP -> Parquet -> S3 (snakemake options_upload)"
	@echo "make bench     # benchmarks; figures go to benchmarks/results/"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,pipeline]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python scripts/demo.py

test: $(STAMP)
	$(BIN)/python -m pytest -q -ra
	scripts/cluster/ci_cluster.sh

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -x -m "not slow"

ingest: $(STAMP)
	$(SNAKEMAKE) ingest

process: $(STAMP)
	$(SNAKEMAKE) process

db: $(STAMP)
	$(SNAKEMAKE) --forcerun db db

all: $(STAMP)
	$(SNAKEMAKE) all

validate: $(STAMP)
	$(SNAKEMAKE) validate_all

options: $(STAMP)
	$(SNAKEMAKE) options_upload

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check src tests scripts benchmarks

clean-data:
	rm -rf data/raw data/processed data/serving data/state data/cxq.duckdb

# --- Slurm (issue 5): a private single-node Slurm on this machine (root; installs slurm-wlm + munge) ---
.PHONY: cluster-demo test-cluster
cluster-demo: $(STAMP)
	PYTHON=$(BIN)/python scripts/cluster/cluster_demo.sh cluster-demo

test-cluster: $(STAMP)
	PYTHON=$(BIN)/python scripts/cluster/cluster_test.sh
