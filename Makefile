# The front door: `make serve` runs the service on the demo model, `make test` proves it.
# Both create the virtual environment first (Python 3.11 and pip are all a machine needs).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins packaging<24 and pytest 9 needs packaging>=24: it gets a venv of its own.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
# KServe's REST client for the V2 client test: kserve pins pandas<3, so a venv of its own.
KSERVE_CLIENT_VENV := .venv-kserve-client
KSERVE_CLIENT_STAMP := $(KSERVE_CLIENT_VENV)/.installed
# pip-tools (the lock) and pip-audit (the audit): tools of their own, in their own venv.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed
PIP_VERSION := 25.3
# The serving peers of `make bench-peers` (MLServer, BentoML, KServe): their pins clash with
# ours and with each other's, so each gets a venv of its own, from bench/peers/requirements-*.txt.
PEERS_VENV := .venv-peers
PEERS := mlserver bentoml kserve
PEERS_STAMPS := $(foreach peer,$(PEERS),$(PEERS_VENV)/$(peer)/.installed)
# MLServer, the reference of the V2 conformance test, in the venv `make bench-peers` uses.
MLSERVER_STAMP := $(PEERS_VENV)/mlserver/.installed
# gitlab-ci-local, pinned in tests/pipeline, runs .gitlab-ci.yml for the pipeline test
# (needs Node 20 and npm).
PIPELINE_TOOLS := tests/pipeline
GITLAB_CI_LOCAL := $(PIPELINE_TOOLS)/node_modules/.bin/gitlab-ci-local

# The embedded registry: a SQLite file (and ./mlruns for artifacts) in this directory,
# both ignored by git. Point MLFLOW_TRACKING_URI at an `mlflow server` to use that instead.
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow.db

.PHONY: help serve test test-fast lint format typecheck bench bench-peers bench-profile \
	bench-overload bench-batch lock audit clean drill

$(STAMP): requirements.txt requirements-dev.txt requirements-deploy.txt requirements-fuzz.txt \
		requirements-spark.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $@

$(CHECKOV_STAMP): tests/deploy/requirements-checkov.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r tests/deploy/requirements-checkov.txt
	touch $@

# pip's output goes to $(PEERS_VENV)/<peer>.log: bench.peers reports a peer whose install
# failed, with the end of that log, rather than leaving it out.
$(PEERS_VENV)/%/.installed: bench/peers/requirements-%.txt
	rm -rf $(PEERS_VENV)/$*
	$(PYTHON) -m venv $(PEERS_VENV)/$*
	$(PEERS_VENV)/$*/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION) \
		> $(PEERS_VENV)/$*.log 2>&1
	$(PEERS_VENV)/$*/bin/python -m pip install -r bench/peers/requirements-$*.txt \
		>> $(PEERS_VENV)/$*.log 2>&1
	touch $@

$(KSERVE_CLIENT_STAMP): tests/app/requirements-kserve-client.txt
	$(PYTHON) -m venv $(KSERVE_CLIENT_VENV)
	$(KSERVE_CLIENT_VENV)/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(KSERVE_CLIENT_VENV)/bin/python -m pip install --quiet -r tests/app/requirements-kserve-client.txt
	touch $@

$(TOOLS_STAMP): requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --upgrade pip==$(PIP_VERSION)
	$(TOOLS_VENV)/bin/python -m pip install --quiet -r requirements-tools.txt

$(GITLAB_CI_LOCAL): $(PIPELINE_TOOLS)/package.json $(PIPELINE_TOOLS)/package-lock.json
	npm ci --prefix $(PIPELINE_TOOLS) --no-audit --no-fund --loglevel=error
	touch $@

# `make help` prints each target's `##` line, the one right above it; `#` lines say more.
## List the targets, each with what it does.
help:
	@awk '/^## /{desc = substr($$0, 4); next} /^$$/{desc = ""} \
		/^[a-zA-Z_-]+:([^=]|$$)/ && desc != "" {split($$0, t, ":"); printf "  %-15s %s\n", t[1], desc; desc = ""}' \
		$(firstword $(MAKEFILE_LIST))

# Trains and promotes the demo model first if the registry has no Production version; probes
# and /metrics are also on the ops listener, 127.0.0.1:8001.
## Serve the demo model on 127.0.0.1:8000 with the production command (2 workers, preloaded).
# What `make serve` serves: the demo model's Production version (any MLflow URI works).
serve: export MODEL_URI ?= models:/credit-risk-scoring/Production
serve: $(STAMP)
	$(BIN)/python -m registry_scripts.train --promote --if-missing
	OPS_PORT=$${OPS_PORT:-8001} PATH="$(CURDIR)/$(BIN):$$PATH" \
		gunicorn --config python:app.gunicorn_conf "app.main:create_app()"

# Real registry, real Gunicorn, real `mlflow server`, Prometheus, the image under podman, the
# GitLab pipeline through gitlab-ci-local, MLServer and KServe's client for the V2 protocol:
# what CI runs (.ci/run).
## Lint, type-check and run every test.
test: lint typecheck $(CHECKOV_STAMP) $(GITLAB_CI_LOCAL) $(MLSERVER_STAMP) $(KSERVE_CLIENT_STAMP)
	$(BIN)/pytest

# Deselects the tests marked `slow`: those that start a process, a server or a tool (Gunicorn,
# `mlflow server`, Prometheus, podman, gitlab-ci-local, a CLI). tests/conftest.py marks every
# test using a fixture that starts one, and fails an unmarked test that starts one anyway.
# One pytest-xdist worker per core: on 2 cores about 52 s of tests instead of 60.
## Run the tests that start no process (no server, no tool).
test-fast: $(STAMP)
	$(BIN)/pytest -m "not slow" -n auto

## Check formatting and lint (ruff), the layers of app/ (import-linter), and build the docs.
lint: $(STAMP) docs
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/lint-imports

# Strict (mkdocs.yml): a broken link or anchor, or a page missing from the nav, fails it.
## Build the docs (MkDocs) into site/, failing on any warning.
.PHONY: docs
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir site

## Type-check the packages, bench/ and tests/ (mypy, strict).
typecheck: $(STAMP)
	$(BIN)/mypy

## Format the code and apply ruff's safe fixes.
format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Every target MET or NOT MET, JSON and charts in bench/results/. `make bench
# BENCH_FLAGS=--quick` for a smoke run.
## Benchmark ours against `mlflow models serve`, the serving stack's own cost, rules', a shadow's, V2's.
bench: $(STAMP)
	$(BIN)/python -m bench.compare $(BENCH_FLAGS)
	$(BIN)/python -m bench.overhead $(BENCH_FLAGS)
	$(BIN)/python -m bench.guardrails_cost $(BENCH_FLAGS)
	$(BIN)/python -m bench.shadow $(BENCH_FLAGS)
	$(BIN)/python -m bench.v2_protocol $(BENCH_FLAGS)

# Installs each peer in its own venv first; one that fails to install is reported by the bench
# (with the end of its pip log), the others still run. BENCH_FLAGS=--quick for a smoke run.
## Benchmark ours against MLServer, BentoML, KServe and `mlflow models serve`, side by side.
bench-peers: $(STAMP)
	-$(MAKE) --keep-going $(PEERS_STAMPS)
	$(BIN)/python -m bench.peers $(BENCH_FLAGS)

# PROFILE_FLAGS: e.g. --model demo --connections 64.
## Profile (py-spy) one worker serving the identity model: where a request's time goes.
bench-profile: $(STAMP)
	$(BIN)/python -m bench.hotspots --model identity --connections 1 $(PROFILE_FLAGS)

# The image installs only the lock. From PyPI alone, whatever the machine's pip configuration;
# pins already in the lock are kept unless requirements.txt moves them
# (`make lock LOCK_FLAGS=--upgrade` refreshes all).
## Lock requirements.txt, with hashes, into requirements.lock.
lock: $(TOOLS_STAMP)
	env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_EXTRA_INDEX_URL PIP_CONFIG_FILE=/dev/null \
	    $(TOOLS_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe --strip-extras \
	    --no-emit-index-url --no-emit-find-links --index-url https://pypi.org/simple \
	    $(LOCK_FLAGS) --output-file requirements.lock requirements.txt

# Where the advisory service does not answer, it says so and that nothing was checked.
## Audit requirements.lock (pip-audit; waivers, with reasons: requirements-audit-waivers.txt).
audit: $(TOOLS_STAMP)
	PIP_AUDIT=$(TOOLS_VENV)/bin/pip-audit PYTHON=$(TOOLS_VENV)/bin/python bash .ci/audit

## Offer the production command 4x its measured capacity for 60 s: sheds, probes, memory.
bench-overload: $(STAMP)
	$(BIN)/python -m bench.overload

# Needs prometheus and prometheus-alertmanager (Debian) and root (a tmpfs is mounted for the
# metrics-directory drill). Takes about 15 minutes; `DRILL_FLAGS="--quick --only NAME"`
# runs one failure with 1 s scrape and evaluation intervals. Report: docs/drills.md.
## Inject each failure into a local production-like stack; measure time to detect and recover.
drill: $(STAMP)
	$(BIN)/python -m drills --output drills/results/latest.json $(DRILL_FLAGS)

# BATCH_FLAGS: e.g. --rows 10000 100000 1000000 (docs/batch.md has the figures).
## Batch scoring rows/s: the batch command against a plain predict loop and spark_udf.
bench-batch: $(STAMP)
	$(BIN)/python -m bench.batch $(BATCH_FLAGS)

## Remove the virtual environments, the npm tools and the caches.
clean:
	rm -rf $(VENV) .venv-checkov $(TOOLS_VENV) $(PEERS_VENV) $(KSERVE_CLIENT_VENV) $(PIPELINE_TOOLS)/node_modules .pytest_cache .mypy_cache .ruff_cache
