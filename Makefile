# Targets named in the README. Everything runs from a project-local virtualenv so a fresh
# machine needs nothing installed by hand.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: venv demo test lint typecheck services clean lock

# Installs take the versions pinned in constraints.txt, the same in the dev venv, CI and the
# Docker image, so a new release of a dependency never changes a build silently; `make lock`
# moves the pins to the newest versions pyproject.toml allows.
# dev/ is the development-only package (the MessageBird and Sentry emulators): installed editable
# here for the tests, the demo and the benchmarks, never part of the wheel or the image.
$(BIN)/tenant-worker: pyproject.toml dev/pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]' -e ./dev
	touch $@

lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/pip install --quiet --upgrade pip
	.lock-venv/bin/pip install --quiet '.[dev]'
	{ echo "# Pinned versions for every install (make venv, CI, Dockerfile). Regenerate: make lock"; \
	  .lock-venv/bin/pip freeze --exclude-editable | grep -vi '^tenant[-_]worker'; } > constraints.txt
	rm -rf .lock-venv

venv: $(BIN)/tenant-worker

services:
	bash scripts/ensure_services.sh

demo: venv services
	$(BIN)/python scripts/demo.py

lint: venv
	$(BIN)/ruff check tenant_worker dev tests scripts
	$(BIN)/ruff format --check tenant_worker dev tests scripts

typecheck: venv
	$(BIN)/mypy

test: venv services lint typecheck
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
