# fsar-tui — two commands: `make demo` and `make test` (README).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip -q --disable-pip-version-check

.PHONY: demo test bench install clean

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(VENV)/bin/activate pyproject.toml
	$(PIP) install -e '.[test]'
	touch $@

install: $(VENV)/.installed

# Embedded PostgreSQL (no set-up needed), migrated, seeded on first run, the
# simulator in the background, then the app.
demo: install
	$(VENV)/bin/fsar-tui demo

# The whole suite against real PostgreSQL (and, later, a real MQTT broker):
# FSAR_TEST_DSN / FSAR_TEST_MQTT_URL when set, else servers the suite starts itself.
test: install
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .hypothesis
