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
DURATION_COL ?=
CURRENT ?=
CONFIG ?= config/report.yaml
CHROMIUM ?= /usr/bin/chromium
PYTEST_ARGS ?=
MODEL ?= models
PORT ?= 8000
STORE ?=
# 1: every `make report` is one MLflow run (local store mlruns.db + mlartifacts/, or MLFLOW_TRACKING_URI when set); 0: off
TRACKING ?= 1
MLFLOW_PORT ?= 5000
DASHBOARD_PORT ?= 8501
REPORTS_DIR ?=

.PHONY: setup browser java report test bench serve dashboard mlflow lab clean-outputs strip-notebooks help

help:
	@echo "make report [DATA=path] | make test | make bench | make serve [MODEL=models PORT=8000 STORE=path] | make dashboard [DASHBOARD_PORT=8501] | make mlflow [MLFLOW_PORT=5000] | make lab | make setup"

setup: $(STAMP) browser java

# Headless Chromium for tests/test_report_browser.py (Debian packages; nothing is downloaded by the tests).
# A cheap check when it is there, so re-running setup never re-runs apt; as root (CI) it installs what is
# missing, otherwise it says how. Without it the browser test skips (and fails under CI=true).
browser:
	@if [ -x "$(CHROMIUM)" ] && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> installing headless Chromium for the report browser test:"; \
	  echo "    apt-get update && apt-get install -y --no-install-recommends chromium chromium-driver"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; \
	else \
	  echo "note: headless Chromium not found ($(CHROMIUM), chromedriver): the report browser test will be skipped"; \
	  echo "      (it fails under CI=true). Install it with:"; \
	  echo "      sudo apt-get update && sudo apt-get install -y --no-install-recommends chromium chromium-driver"; \
	fi

# Java 17+ for PySpark (features --engine spark, tests/test_spark_*.py), from Debian's packages, the same way:
# installed when root, else the command is printed; without it the Spark tests skip (and fail under CI=true).
java:
	@if command -v java >/dev/null && java -version 2>&1 | grep -Eq 'version "(1[7-9]|[2-9][0-9])'; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "==> installing Java 17 for PySpark: apt-get update && apt-get install -y --no-install-recommends openjdk-17-jre-headless"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless; \
	else \
	  echo "note: Java 17+ not found: the Spark engine and its tests need it (they skip without it, and fail under CI=true)."; \
	  echo "      Install it with: sudo apt-get update && sudo apt-get install -y --no-install-recommends openjdk-17-jre-headless"; \
	fi

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

report: $(STAMP)
	$(BIN)/python -m churnlib report --config $(CONFIG) $(if $(DATA),--data "$(DATA)" --id-col $(ID_COL) --label-col $(LABEL_COL)) $(if $(SPLIT_COL),--split-col $(SPLIT_COL)) $(if $(DURATION_COL),--duration-col $(DURATION_COL)) $(if $(CURRENT),--current "$(CURRENT)") $(if $(filter 0 off false no,$(TRACKING)),--no-tracking)

# Each notebook executes once, under nbval; the report browser test then renders what nbval executed
# (tests/nbval_executed.py runs it after the notebooks). --durations: the slowest tests, in every log.
test: setup
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-kernel-name $(KERNEL) --durations=15 $(PYTEST_ARGS)

bench: setup
	$(BIN)/python -m churnlib bench

# The prediction service on 127.0.0.1:$(PORT) over the artifact in $(MODEL) (make report writes models/);
# predictions go to $(STORE), by default data/predictions.sqlite. Ctrl+C stops it.
serve: $(STAMP)
	$(BIN)/python -m churnlib serve --model "$(MODEL)" --port $(PORT) $(if $(STORE),--store "$(STORE)")

# The retention dashboard (Streamlit) on 127.0.0.1:$(DASHBOARD_PORT) over what `make report` wrote. Ctrl+C stops it.
dashboard: $(STAMP)
	$(BIN)/python -m churnlib dashboard --port $(DASHBOARD_PORT) $(if $(REPORTS_DIR),--reports-dir "$(REPORTS_DIR)")

# The MLflow UI over the project's local tracking store (runs of `make report` and `churnlib train`, the
# model registry with its champion/challenger aliases), on 127.0.0.1 only. Ctrl+C stops it.
mlflow: $(STAMP)
	@echo "==> MLflow UI on http://127.0.0.1:$(MLFLOW_PORT) (store: $(CURDIR)/mlruns.db, artifacts: $(CURDIR)/mlartifacts); Ctrl+C stops it"
	$(BIN)/mlflow ui --backend-store-uri "sqlite:///$(CURDIR)/mlruns.db" --default-artifact-root "$(CURDIR)/mlartifacts" --host 127.0.0.1 --port $(MLFLOW_PORT)

lab: setup
	$(BIN)/jupyter lab notebooks/

strip-notebooks: setup
	$(BIN)/python -m churnlib strip-notebooks notebooks/*.ipynb
