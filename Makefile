# dueflow — `make run` serves the API on embedded defaults; `make test` runs every test;
# `make check` is the fast subset for the edit loop.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8080
export PORT

.PHONY: run test check lint venv inspector web-assets browser-tools npm clean dlq-list dlq-replay images deploy deploy-minikube rollback bench

# Two installs into one venv: `make run` needs only the runtime package (shared/) and the local
# runtime (tools/); `make test`, `make check`, `make bench` and `make venv` add the test and lint
# tools (requirements-dev.txt). Each stamp is redone when its inputs change.
RUN_INSTALLED := $(VENV)/.installed-run
DEV_INSTALLED := $(VENV)/.installed-dev
PIP := $(PY) -m pip --quiet --disable-pip-version-check

venv: $(DEV_INSTALLED)

$(PY):
	$(PYTHON) -m venv $(VENV)

$(RUN_INSTALLED): shared/pyproject.toml tools/pyproject.toml | $(PY)
	$(PIP) install -e ./shared -e ./tools
	touch $@

$(DEV_INSTALLED): $(RUN_INSTALLED) requirements-dev.txt
	$(PIP) install -r requirements-dev.txt
	touch $@

run: $(RUN_INSTALLED) web-assets
	$(PY) -m dueflow_local.run

# The full suite, as CI runs it (thorough Hypothesis profile).
test: venv inspector web-assets browser-tools
	$(PY) -m ruff check .
	DUEFLOW_HYPOTHESIS_PROFILE=thorough $(PY) -m pytest

# The edit loop: lint, then the unit, service and function tests on SQLite only, with the fast
# Hypothesis profile, spread over the machine's cores (pytest-xdist); no PostgreSQL, Kafka or
# `make run` stack.
CHECK_DIRS := $(wildcard tests/unit tests/service tests/functions)
check: venv web-assets
	$(PY) -m ruff check .
	DUEFLOW_TEST_DIALECTS=sqlite DUEFLOW_HYPOTHESIS_PROFILE=fast \
		$(PY) -m pytest -n auto $(CHECK_DIRS)

# npm installs from lock files, without install scripts (swagger-ui-dist's would phone home).
NPM_CI := npm ci --no-audit --no-fund --loglevel=error --ignore-scripts

# Node and npm: Debian's, installed when missing (as root; otherwise say what to install).
npm:
	@command -v npm >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update \
		&& apt-get install -y --no-install-recommends nodejs npm; } \
		|| { echo "make: npm is needed: apt-get install nodejs npm" >&2; exit 1; }

# The web app's browser libraries (functions/web: the OIDC client, Swagger UI for /docs).
WEB := functions/web
web-assets: $(WEB)/node_modules/.installed

$(WEB)/node_modules/.installed: $(WEB)/package-lock.json | npm
	$(NPM_CI) --prefix $(WEB)
	touch $@

# The browser tests' npm tools (axe-core, oidc-provider); Chromium itself is Debian's,
# installed by the tests (tests/support/chromium.py).
BROWSER := tests/browser
browser-tools: $(BROWSER)/node_modules/.installed

$(BROWSER)/node_modules/.installed: $(BROWSER)/package-lock.json | npm
	$(NPM_CI) --prefix $(BROWSER)
	touch $@

# The MCP Inspector (npm), the second MCP client of the assistant's tests: installed from its lock.
INSPECTOR := tests/e2e/inspector
inspector: $(INSPECTOR)/node_modules/.installed

$(INSPECTOR)/node_modules/.installed: $(INSPECTOR)/package-lock.json
	npm ci --prefix $(INSPECTOR) --no-audit --no-fund --loglevel=error
	touch $@

# Dead letters of the running system (DATABASE_URL; default the `make run` database).
dlq-list: $(RUN_INSTALLED)
	$(PY) -m dueflow.dlq list $(if $(ALL),--all)

# Replay all dead letters, or only IDS="3 7"; to DUEFLOW_BROKER_URL or the `make run` broker.
dlq-replay: $(RUN_INSTALLED)
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
