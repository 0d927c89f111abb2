# fsar-tui — `make demo` and `make test` (README); `make test-fast`, `make check`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check
# xdist workers for `make test`: one more than the cores — many tests wait on servers,
# subprocesses and terminals, and on 2 cores 3 workers took the suite from 10m39s to
# 8m07s; `--dist worksteal` lets an idle worker take queued tests from a busy one, so
# the long ones do not leave a tail.
WORKERS ?= $(shell $(PYTHON) -c 'import os; print((os.cpu_count() or 1) + 1)')

.PHONY: demo test test-fast check bench install install-dev clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/activate pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@

# The suite checks the checks (tests/test_checks.py runs ruff, mypy, lint-imports):
# the test targets install the dev extras too.
$(VENV)/.installed-dev: $(VENV)/bin/activate pyproject.toml
	$(PIP) install -e '.[test,dev]'
	touch $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

# Embedded PostgreSQL (no set-up needed), migrated, seeded on first run, the
# simulator in the background, then the app.
demo: install
	$(VENV)/bin/fsar-tui demo

# The whole suite against real PostgreSQL and a real MQTT broker, on every core
# (pytest-xdist): FSAR_TEST_DSN / FSAR_TEST_MQTT_URL when set, else one PostgreSQL
# and one broker the suite starts itself for the run, shared by the workers.
test: install-dev
	$(PY) -m pytest -n $(WORKERS) --dist worksteal $(PYTEST_ARGS)

# Every test that needs no PostgreSQL, broker or terminal, with none configured
# (tests marked `services` by tests/conftest.py are left out; one that reaches for a
# server anyway fails saying so).
test-fast: install-dev
	env -u FSAR_TEST_DSN -u FSAR_TEST_MQTT_URL FSAR_TEST_FAST=1 $(PY) -m pytest -n $(WORKERS) --dist worksteal -m "not services" $(PYTEST_ARGS)

# Lint, format, types, layering (import-linter, then tools/check_tree.py for what its
# graph cannot see) — in this order, all from the venv.
check: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) tools/check_tree.py

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
