# Targets named in the README. Everything runs from a project-local virtualenv so a fresh
# machine needs nothing installed by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint typecheck services clean

$(BIN)/tenant-worker: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/tenant-worker

services:
	bash scripts/ensure_services.sh

demo: venv services
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check tenant_worker tests scripts
	$(BIN)/ruff format --check tenant_worker tests scripts

typecheck: venv
	$(BIN)/mypy

test: venv services lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
