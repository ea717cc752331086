# The front door: `make serve` runs the service on the demo model, `make test` proves it.
# Both create the virtual environment first (Python 3.11 and pip are all a machine needs).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins packaging<24 and pytest 9 needs packaging>=24: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# pip-tools (the lock) and pip-audit (the audit): tools of their own, in their own venv.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
PIP_VERSION := 25.3
# gitlab-ci-local, pinned in tests/pipeline, runs .gitlab-ci.yml for the pipeline test
# (needs Node 20 and npm).
PIPELINE_TOOLS := tests/pipeline
GITLAB_CI_LOCAL := $(PIPELINE_TOOLS)/node_modules/.bin/gitlab-ci-local

# The embedded registry: a SQLite file (and ./mlruns for artifacts) in this directory,
# both ignored by git. Point MLFLOW_TRACKING_URI at an `mlflow server` to use that instead.
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db

.PHONY: serve test lint format typecheck bench bench-profile bench-overload lock audit clean

$(STAMP): requirements.txt requirements-dev.txt requirements-deploy.txt requirements-fuzz.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

$(CHECKOV_STAMP): tests/deploy/requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r tests/deploy/requirements-checkov.txt
	touch $@

$(TOOLS_STAMP): requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt

$(GITLAB_CI_LOCAL): $(PIPELINE_TOOLS)/package.json $(PIPELINE_TOOLS)/package-lock.json
	npm ci --prefix $(PIPELINE_TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

## Train and promote the demo model if the registry has no Production version, then serve it
## on 127.0.0.1:8000 with the production command (2 workers, preloaded model); probes and
## /metrics also on the ops listener, 127.0.0.1:8001.
# What `make serve` serves: the demo model's Production version (any MLflow URI works).
serve: export MODEL_URI ?= models:/credit-risk-scoring/Production
serve: $(STAMP)
	$(BIN)/python -m registry_scripts.train --promote --if-missing
	OPS_PORT=$${OPS_PORT:-8001} PATH="$(CURDIR)/$(BIN):$$PATH" \
		gunicorn --config python:app.gunicorn_conf "app.main:create_app()"

## Lint, type-check and run every test (real registry, real Gunicorn, real mlflow server,
## the GitLab pipeline through gitlab-ci-local).
test: lint typecheck $(CHECKOV_STAMP) $(GITLAB_CI_LOCAL)
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

## Our server against `mlflow models serve` on the demo model, then the serving stack's own
## cost (HTTP floor, column and row sweeps on identity models); every target MET or NOT MET,
## JSON and charts in bench/results/. `make bench BENCH_FLAGS=--quick` for a smoke run.
bench: $(STAMP)
	$(BIN)/python -m bench.compare $(BENCH_FLAGS)
	$(BIN)/python -m bench.overhead $(BENCH_FLAGS)

## py-spy on one worker of the production command serving the identity model, 1 connection:
## where a request's time goes (PROFILE_FLAGS: e.g. --model demo --connections 64).
bench-profile: $(STAMP)
	$(BIN)/python -m bench.hotspots --model identity --connections 1 $(PROFILE_FLAGS)

## Lock every runtime package of requirements.txt, with hashes, into requirements.lock (the
## image installs only that). From PyPI alone, whatever the machine's pip configuration;
## pins already in the lock are kept unless requirements.txt moves them
## (`make lock LOCK_FLAGS=--upgrade` refreshes all).
lock: $(TOOLS_STAMP)
	env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	    $(TOOLS_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	    --no-emit-index-url --no-emit-find-links --index-url https://pypi.org/simple \
	    $(LOCK_FLAGS) --output-file requirements.lock requirements.txt

## pip-audit requirements.lock (waivers, with reasons: requirements-audit-waivers.txt). Where
## the advisory service does not answer, it says so and that nothing was checked.
audit: $(TOOLS_STAMP)
	PIP_AUDIT=$(TOOLS_VENV)/bin/pip-audit PYTHON=$(TOOLS_VENV)/bin/python bash .ci/audit

## The production command offered 4x its measured capacity for 60 s: sheds, probes, memory.
bench-overload: $(STAMP)
	$(BIN)/python -m bench.overload

clean:
	rm -rf $(VENV) .venv-checkov $(TOOLS_VENV) $(PIPELINE_TOOLS)/node_modules .pytest_cache .mypy_cache .ruff_cache
