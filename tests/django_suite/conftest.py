"""Django set up for the ported `tests/tasks` suite and our Django tests: one database
per run ($STALWART_DJANGO_DB = sqlite | postgresql | mariadb; `make test` runs all three),
Django's tables and Stalwart's migrated once, Stalwart's tables emptied before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import django
import pytest

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.django_suite.settings")
django.setup()

from django.core.management import call_command  # noqa: E402

from stalwart.contrib.django import stalwart_backend  # noqa: E402
from tests.conftest import drop_all  # noqa: E402
from tests.django_suite.dbs import KIND  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def migrated() -> None:
    """Before any test class blocks the database: the schemas as declared now."""
    backend = stalwart_backend()
    drop_all(backend.app.store)
    backend.app.migrate()
    call_command("migrate", run_syncdb=True, verbosity=0)


@pytest.fixture(autouse=True)
def stalwart_tables(migrated: None) -> Iterator[None]:
    stalwart_backend().app.store.tables_reset()
    yield


def pytest_report_header() -> str:
    return f"django {django.get_version()}, database {KIND}"
