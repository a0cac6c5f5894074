"""A SQLAlchemy `Connection` over Django's own database connection, inside Django's
transaction: how a job enqueued in ``transaction.atomic()`` commits or rolls back with
the user's rows.

The store writes through a SQLAlchemy `Connection` (`store.jobs_enqueue(jobs, conn=...)`).
Here that connection wraps the DB-API connection Django holds for this thread, through a
proxy whose ``commit``, ``rollback`` and ``close`` do nothing: SQLAlchemy never ends
Django's transaction, Django's ``atomic()`` does. The SQLAlchemy dialect matches the
driver Django uses (sqlite3, psycopg 3 or 2, mysqlclient or PyMySQL) and is registered
without its on-connect set-up (a REGEXP function, a notice handler, ``SET NAMES``), so
nothing of Django's connection is changed. Savepoints (unique keys) are SQL, and nest
inside Django's transaction like its own.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.mysql.mysqldb import MySQLDialect_mysqldb
from sqlalchemy.dialects.mysql.pymysql import MySQLDialect_pymysql
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.dialects.postgresql.psycopg2 import PGDialect_psycopg2
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.pool import NullPool


class _NoConnectSetUp:
    """A dialect that leaves a connection as it found it (it is Django's)."""


class _NoTypeLookUps:
    """PostgreSQL: no hstore look-up on Django's connection (not ours to register)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("use_native_hstore", False)
        super().__init__(**kwargs)

    def on_connect(self) -> None:
        return None

    def on_connect_url(self, url: Any) -> None:
        return None


class BorrowedSQLite(_NoConnectSetUp, SQLiteDialect_pysqlite):  # type: ignore[misc]
    supports_statement_cache = True  # read from each class's own __dict__


class BorrowedPsycopg(_NoConnectSetUp, _NoTypeLookUps, PGDialect_psycopg):  # type: ignore[misc]
    supports_statement_cache = True  # read from each class's own __dict__


class BorrowedPsycopg2(_NoConnectSetUp, _NoTypeLookUps, PGDialect_psycopg2):  # type: ignore[misc]
    supports_statement_cache = True  # read from each class's own __dict__


class BorrowedMySQLdb(_NoConnectSetUp, MySQLDialect_mysqldb):  # type: ignore[misc]
    supports_statement_cache = True  # read from each class's own __dict__


class BorrowedPyMySQL(_NoConnectSetUp, MySQLDialect_pymysql):  # type: ignore[misc]
    supports_statement_cache = True  # read from each class's own __dict__


# URL scheme (as SQLAlchemy's registry spells "dialect.driver") -> class in this module.
_DIALECTS = {
    "sqlite.stalwart_borrowed": "BorrowedSQLite",
    "postgresql.stalwart_borrowed_psycopg": "BorrowedPsycopg",
    "postgresql.stalwart_borrowed_psycopg2": "BorrowedPsycopg2",
    "mysql.stalwart_borrowed_mysqldb": "BorrowedMySQLdb",
    "mysql.stalwart_borrowed_pymysql": "BorrowedPyMySQL",
}
for _name, _cls in _DIALECTS.items():
    registry.register(_name, __name__, _cls)


class _Borrowed:
    """Django's DB-API connection, with the transaction left to Django."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return self._raw.cursor(*args, **kwargs)

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


def scheme_for(vendor: str, raw: Any) -> str:
    """The SQLAlchemy URL scheme of the borrowing dialect for Django's connection."""
    module = type(raw).__module__
    if vendor == "sqlite":
        return "sqlite+stalwart_borrowed"
    if vendor == "postgresql":
        driver = "psycopg2" if module.startswith("psycopg2") else "psycopg"
        return f"postgresql+stalwart_borrowed_{driver}"
    if vendor == "mysql":
        driver = "pymysql" if module.startswith("pymysql") else "mysqldb"
        return f"mysql+stalwart_borrowed_{driver}"
    raise ValueError(f"Stalwart cannot enqueue through a {vendor!r} Django connection")


_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()
_lending = threading.local()


def _engine(scheme: str) -> Engine:
    engine = _engines.get(scheme)
    if engine is None:
        with _engines_lock:
            engine = _engines.get(scheme)
            if engine is None:
                # NullPool: each checkout asks the creator, which lends the connection
                # Django holds for the calling thread; nothing is kept between calls.
                engine = create_engine(
                    f"{scheme}://", creator=_lent, poolclass=NullPool, future=True
                )
                _engines[scheme] = engine
    return engine


def _lent() -> _Borrowed:
    raw = getattr(_lending, "raw", None)
    if raw is None:
        raise RuntimeError("no Django connection is being lent (use borrow())")
    return _Borrowed(raw)


@contextmanager
def borrow(django_connection: Any) -> Iterator[Connection]:
    """A SQLAlchemy Connection on ``django_connection``, in its current transaction."""
    django_connection.ensure_connection()
    raw = django_connection.connection
    engine = _engine(scheme_for(django_connection.vendor, raw))
    _lending.raw = raw
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        _lending.raw = None
