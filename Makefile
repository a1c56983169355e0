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

$(VENV)/.installed: $(UV) uv.lock pyproject.toml
	$(UV) sync --frozen --quiet
	touch $@

install: $(VENV)/.installed ## Create .venv from the lock file (uv.lock)

run: install ## Migrate, seed the demo, print URL + Collect QR code, serve on 127.0.0.1:8383
	$(VENV)/bin/homeward demo
	$(VENV)/bin/homeward serve

test: install ## Run the whole suite on SQLite+files and PostgreSQL+S3 (starts and stops both)
	$(PY) -m pytest -q

lint: install ## ruff format check, ruff check, mypy --strict
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy server forms exports storage tests bench

format: install ## Reformat the code with ruff
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: install ## Ingest, export (100k and 1M), OData and entity-list benchmarks; figures go to docs/benchmarks.md
	$(PY) -m bench.ingest --write-docs
	$(PY) -m bench.exports --counts 100000,1000000 --write-docs
	$(PY) -m bench.odata --count 100000 --write-docs
	$(PY) -m bench.entities --count 100000 --write-docs

lock: $(UV) ## Re-resolve dependencies into uv.lock
	$(UV) lock

clean: ## Remove the environment and local data
	rm -rf $(VENV) .tools var .pytest_cache .mypy_cache .ruff_cache

.PHONY: help install run test lint format bench lock clean
