# The two set-up commands of the README: `make demo` and `make test`.
# Both create .venv on first use and install the package into it. `make test` also
# builds .venv-django6 (Python 3.12, Django 6) for the Django suite.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Django 6 needs Python 3.12+: a second venv, its own Python.
VENV6 := .venv-django6
STAMP6 := $(VENV6)/.installed
DJANGO_DBS := sqlite postgresql mariadb

.PHONY: demo test test-django lint services pgbouncer browser faketime clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[web,test,django5]'
	touch $(STAMP)

$(STAMP6): pyproject.toml
	"$$(bash scripts/find-python.sh 3.12)" -m venv $(VENV6)
	$(VENV6)/bin/pip install --quiet --upgrade pip
	$(VENV6)/bin/pip install --quiet -e '.[web,test,django]' 'django>=6.1,<6.2' django-tasks-db
	touch $(STAMP6)

demo: $(STAMP)
	$(BIN)/stalwart demo

services:
	bash scripts/ensure-services.sh

pgbouncer:
	bash scripts/ensure-pgbouncer.sh

browser:
	bash scripts/ensure-browser.sh

faketime:
	bash scripts/ensure-faketime.sh

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/mypy

# Django's ported task suite and our Django tests, on each database, with Django 6.1
# (Python 3.12) and with Django 5.2 + the django-tasks backport (Python 3.11).
test-django: $(STAMP) $(STAMP6) services browser
	@set -e; for venv in $(VENV6) $(VENV); do for db in $(DJANGO_DBS); do \
		echo "== Django suite: $$venv, $$db"; \
		STALWART_DJANGO_DB=$$db $$venv/bin/pytest -q tests/django_suite; \
	done; done

test: $(STAMP) $(STAMP6) services pgbouncer browser faketime lint
	$(BIN)/pytest -q -n 3 -m "not serial"
	$(BIN)/pytest -q -m serial
	$(MAKE) test-django

clean:
	rm -rf $(VENV) $(VENV6) stalwart-demo.db stalwart-demo.db-wal stalwart-demo.db-shm stalwart-demo.db-writers
