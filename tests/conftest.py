"""One conformance suite, run against real SQLite, PostgreSQL and MariaDB.

The server databases come from $STALWART_TEST_POSTGRES_URL and $STALWART_TEST_MYSQL_URL
(defaults: the local servers, database `stalwart_test`). A server that cannot be
reached is a failure, not a skip: `.ci/run` starts both before the tests.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import stalwart
from stalwart.config import Config
from stalwart.store import Store, open_store

from .fleet import REPO, Fleet, write_config


def _own_database(url: str) -> str:
    """Under pytest-xdist each worker gets its own database (`stalwart_test_gw0`, ...:
    `scripts/ensure-services.sh` creates them), so workers never reset each other's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    base, sep, query = url.partition("?")
    return f"{base}_{worker}{sep}{query}"


SERVER_URLS = {
    "postgresql": _own_database(
        os.environ.get(
            "STALWART_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/stalwart_test"
        )
    ),
    "mariadb": _own_database(
        os.environ.get("STALWART_TEST_MYSQL_URL", "mysql://root@127.0.0.1:3306/stalwart_test")
    ),
}
BACKENDS = ["sqlite", "postgresql", "mariadb"]

_migrated: set[str] = set()


def database_url(backend: str, tmp_path: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'stalwart.db'}"
    return SERVER_URLS[backend]


def drop_all(store: Store) -> None:
    from stalwart.store.migrations import schema_migrations
    from stalwart.store.schema import metadata

    with store.engine.begin() as conn:
        metadata.drop_all(conn)
        schema_migrations.drop(conn, checkfirst=True)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def db_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A migrated, empty database of each kind."""
    url = database_url(backend, tmp_path)
    store = open_store(url)
    try:
        if url not in _migrated:
            # Start the session from the schema as declared now, whatever an earlier
            # run of another version left in the shared test database.
            drop_all(store)
            store.migrate()
            _migrated.add(url)
        store.tables_reset()
    finally:
        store.dispose()
    yield url


@pytest.fixture
def fleet(db_url: str, tmp_path: Path) -> Iterator[Fleet]:
    """Real `stalwart start` processes on tests/apps/procapp.py (tests/fleet.py)."""
    sys.path.insert(0, str(REPO))
    from tests.apps.procapp import app as procapp  # registers the tasks

    write_config(tmp_path / "stalwart.toml", db_url)
    application = stalwart.App(config=Config(database_url=db_url, source="tests"))
    application.tasks.update(procapp.tasks)
    fleet = Fleet(tmp_path, db_url, tmp_path / "events.log", application)
    yield fleet
    fleet.kill_leftovers()
    application.close()


@pytest.fixture
def app(db_url: str) -> Iterator[stalwart.App]:
    application = stalwart.App(config=Config(database_url=db_url, source="tests"))
    yield application
    application.close()
