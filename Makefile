# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv on first use and install the package into it.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint services browser clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[web,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/stalwart demo

services:
	bash scripts/ensure-services.sh

browser:
	bash scripts/ensure-browser.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/mypy

test: $(STAMP) services browser lint
	$(BIN)/pytest -q

clean:
	rm -rf $(VENV) stalwart-demo.db stalwart-demo.db-wal stalwart-demo.db-shm stalwart-demo.db-writers
