# Two commands set everything up: `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME := $(CURDIR)
export M5_DATA_DIR ?= $(CURDIR)/data
# dagster.yaml reads its paths from these: the instance lives in the data folder it runs over.
export M5_DAGSTER_STORAGE ?= $(M5_DATA_DIR)/dagster/storage
export M5_DAGSTER_ARTIFACTS ?= $(M5_DATA_DIR)/dagster/artifacts
export M5_DAGSTER_LOGS ?= $(M5_DATA_DIR)/dagster/logs

.PHONY: run test lint docs docs-serve backtest ui mlflow api dashboard bench clean lock up down help

help:
	@echo "make run    - set up .venv, generate demo data if data/raw is empty, build the feature store, train the newest model"
	@echo "make test   - set up .venv with dev extras, lint and run the test suite"
	@echo "make lint   - ruff's lint and format checks, the import layers (lint-imports) and the types (mypy)"
	@echo "make docs   - build the documentation site into site/ (strict: a broken link fails); open site/index.html"
	@echo "make docs-serve - serve the documentation site on http://127.0.0.1:8001, rebuilt as pages change"
	@echo "make backtest - replay the last 52 weeks of \$$M5_DATA_DIR: a model each month, a forecast every 7 days, scored beside the peers"
	@echo "make ui     - open the Dagster UI on http://127.0.0.1:3000"
	@echo "make mlflow - open the MLflow UI on http://127.0.0.1:5000 (runs and registered models)"
	@echo "make dashboard - open the Streamlit dashboard on http://127.0.0.1:8501 over \$$M5_DATA_DIR"
	@echo "make api    - serve the REST API on http://127.0.0.1:8000 (docs at /docs) over \$$M5_DATA_DIR"
	@echo "make bench  - full-scale benchmarks: features, training (vs mlforecast), forecast partitions, drift and inventory, the API, the dashboard, a first m5 run and its rerun"
	@echo "make clean  - delete everything the pipeline wrote under data/ (keeps data/raw)"
	@echo "make up     - build the image and start the compose stack (Dagster on Postgres, API, dashboard, Prometheus, Grafana)"
	@echo "make down   - stop the compose stack (its volumes, and so its data, stay)"
	@echo "make lock   - re-pin requirements.lock (the image's dependencies) from pyproject.toml in a fresh environment"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# setuptools prints a notice about editable installs on every install (a UserWarning in its build
# backend); it says nothing about this project, so the install stays quiet.
QUIET_BUILD := PYTHONWARNINGS=ignore::UserWarning

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed $(VENV)/.installed-docs

$(VENV)/.installed-docs: pyproject.toml | $(BIN)/python
	$(QUIET_BUILD) $(BIN)/python -m pip install --quiet -e '.[docs]'
	touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	$(BIN)/m5 run

test: lint docs
	$(BIN)/python -m pytest

# The checks a machine makes of the code itself, before any test runs.
lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

# MkDocs 1.x plugins print notices about MkDocs 2 on every build; the bound in pyproject.toml
# (mkdocs<2) is the answer to them, so they are switched off here.
DOCS_ENV := NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true

docs: $(VENV)/.installed-docs
	$(DOCS_ENV) $(BIN)/mkdocs build --strict --quiet

docs-serve: $(VENV)/.installed-docs
	$(DOCS_ENV) $(BIN)/mkdocs serve --strict -a 127.0.0.1:8001

backtest: $(VENV)/.installed
	$(BIN)/m5 backtest

ui: $(VENV)/.installed
	$(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

mlflow: $(VENV)/.installed
	$(BIN)/mlflow ui --backend-store-uri "$${MLFLOW_TRACKING_URI:-sqlite:///$(M5_DATA_DIR)/mlflow/mlflow.db}" -h 127.0.0.1 -p 5000

api: $(VENV)/.installed
	$(BIN)/python -m m5_serving --host 127.0.0.1 --port 8000

dashboard: $(VENV)/.installed
	$(BIN)/streamlit run m5_dashboard/app.py --server.address 127.0.0.1 --server.port 8501 --server.headless true --browser.gatherUsageStats false

bench: $(VENV)/.installed-dev
	$(BIN)/python benchmarks/bench_features.py
	$(BIN)/python benchmarks/bench_model.py
	$(BIN)/python benchmarks/bench_forecast.py
	$(BIN)/python benchmarks/bench_shards.py
	$(BIN)/python benchmarks/bench_feature_shards.py
	$(BIN)/python benchmarks/bench_scoring_shards.py
	$(BIN)/python benchmarks/bench_monitoring.py
	$(BIN)/python benchmarks/bench_api.py
	$(BIN)/python benchmarks/bench_dashboard.py
	$(BIN)/python benchmarks/bench_first_run.py

clean:
	rm -rf "$(M5_DATA_DIR)/warehouse" "$(M5_DATA_DIR)/dagster" "$(M5_DATA_DIR)/mlflow" "$(M5_DATA_DIR)/tmp" "$(M5_DATA_DIR)/raw_unpacked"

# The deployment (compose.yaml, README "Deployment"). Needs a container engine with compose.
COMPOSE ?= docker compose

# Secrets the stack needs, made once and kept out of git (.gitignore).
.env:
	@$(PYTHON) -c 'import secrets; t = secrets.token_urlsafe; print(f"DAGSTER_PG_PASSWORD={t(24)}\nM5_API_KEYS=ops:admin:{t(32)}\nGRAFANA_ADMIN_PASSWORD={t(18)}")' > $@
	@echo "wrote .env with fresh secrets (the API key is the part after ops:admin:)"

up: .env
	@$(COMPOSE) version >/dev/null 2>&1 || { echo "make up needs a container engine with compose: '$(COMPOSE) version' fails here (for Podman: make up COMPOSE='podman compose')"; exit 2; }
	$(COMPOSE) up -d --build
	@echo "Dagster UI http://127.0.0.1:3000  API http://127.0.0.1:8000/docs  dashboard http://127.0.0.1:8501  Grafana http://127.0.0.1:3001  Prometheus http://127.0.0.1:9090"

down:
	$(COMPOSE) down

# A fresh environment resolves pyproject.toml's dependencies; its exact versions become the lock.
LOCK_VENV := build/lock-venv
lock: | $(BIN)/python
	rm -rf $(LOCK_VENV) && $(PYTHON) -m venv $(LOCK_VENV)
	$(QUIET_BUILD) $(LOCK_VENV)/bin/python -m pip install --quiet .
	{ sed -n '1,3p' requirements.lock; $(LOCK_VENV)/bin/python -m pip freeze --exclude m5-forecasting; } > requirements.lock.new
	mv requirements.lock.new requirements.lock && rm -rf $(LOCK_VENV)
