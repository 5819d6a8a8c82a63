# dueflow — `make run` serves the API on embedded defaults; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8080
export PORT

.PHONY: run test lint venv inspector clean dlq-list dlq-replay images deploy deploy-minikube rollback bench

venv: $(VENV)/.installed

$(VENV)/.installed: shared/pyproject.toml requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e ./shared -r requirements-dev.txt
	touch $@

run: venv
	$(PY) -m dueflow.localrun

test: venv inspector
	$(PY) -m ruff check .
	$(PY) -m pytest

# The MCP Inspector (npm), the second MCP client of the assistant's tests: installed from its lock.
INSPECTOR := tests/e2e/inspector
inspector: $(INSPECTOR)/node_modules/.installed

$(INSPECTOR)/node_modules/.installed: $(INSPECTOR)/package-lock.json
	npm ci --prefix $(INSPECTOR) --no-audit --no-fund --loglevel=error
	touch $@

# Dead letters of the running system (DATABASE_URL; default the `make run` database).
dlq-list: venv
	$(PY) -m dueflow.dlq list $(if $(ALL),--all)

# Replay all dead letters, or only IDS="3 7"; to DUEFLOW_BROKER_URL or the `make run` broker.
dlq-replay: venv
	$(PY) -m dueflow.dlq replay $(IDS)

# One image per function (docker or podman); IMAGE_REPOSITORY, IMAGE_TAG, PUSH=1, FUNCTIONS.
images:
	scripts/images.sh

# Minikube with Knative, Kafka (Strimzi), Dapr, PostgreSQL and the chart (docs/deploy.md).
deploy-minikube:
	scripts/deploy-minikube.sh

# The chart on AKS or GKE: make deploy CLOUD=aks IMAGE_TAG=<sha> [IMAGE_REPOSITORY=ghcr.io/<owner>/<repo>]
deploy:
	scripts/deploy.sh deploy

# helm rollback to REVISION (default: the previous revision).
rollback:
	scripts/deploy.sh rollback $(REVISION)

# Benchmarks against their targets (BENCH=quick by default, BENCH=full for the large sizes):
# results in bench/results/latest.{json,md}; see docs/performance.md.
bench: venv
	$(PY) -m bench

lint: venv
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .dueflow .pytest_cache
