# churnlib: two commands on a fresh machine with python3 (3.11+) and pip:
#   make report   # sets up if needed, runs the whole pipeline, prints where the reports are
#   make test     # sets up if needed, runs every test (unit, real data, notebooks)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.churnlib-installed
KERNEL := churnlib
DATA ?=
ID_COL ?= user_id
LABEL_COL ?= is_churned
SPLIT_COL ?=
CONFIG ?= config/report.yaml
PYTEST_ARGS ?=

.PHONY: setup report test bench lab clean-outputs strip-notebooks help

help:
	@echo "make report [DATA=path] | make test | make bench | make lab | make setup"

setup: $(STAMP)

# Re-runs only when the dependency set changes. Versions come from requirements.lock (pip constraints).
$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (need Python 3.11+)"; exit 1; }
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "error: Python 3.11+ required"; exit 1; }
	@echo "==> creating $(VENV) and installing churnlib (pinned by requirements.lock)"
	@start=$$(date +%s); \
	$(PYTHON) -m venv $(VENV) && \
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock -e '.[dev]' && \
	$(BIN)/python -m ipykernel install --sys-prefix --name $(KERNEL) --display-name "Python (churnlib)" >/dev/null && \
	echo "==> setup done in $$(( $$(date +%s) - start )) s; venv size $$(du -sh $(VENV) | cut -f1)"
	@touch $(STAMP)

report: setup
	$(BIN)/python -m churnlib report --config $(CONFIG) $(if $(DATA),--data "$(DATA)" --id-col $(ID_COL) --label-col $(LABEL_COL)) $(if $(SPLIT_COL),--split-col $(SPLIT_COL))

test: setup
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-kernel-name $(KERNEL) $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m churnlib bench

lab: setup
	$(BIN)/jupyter lab notebooks/

strip-notebooks: setup
	$(BIN)/python -m churnlib strip-notebooks notebooks/*.ipynb
