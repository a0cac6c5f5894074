"""What a database can do, read once from its SQLAlchemy dialect.

The rest of the store branches on these flags, never on a database's name. This module
is the one place that knows which database is which.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.engine import Dialect


@dataclass(frozen=True)
class Capabilities:
    # `SELECT ... FOR UPDATE SKIP LOCKED`: many claimers without waiting on each other.
    skip_locked: bool
    # LISTEN/NOTIFY wake-ups.
    notify: bool
    # `INSERT ... RETURNING` with rows in parameter order, for multi-row inserts.
    insert_many_returning: bool
    # One writer at a time (SQLite): writes take the lock up front with BEGIN IMMEDIATE.
    single_writer: bool
    # How `stalwart migrate` serializes concurrent runs.
    lock_style: str  # "advisory_xact" | "get_lock" | "write_transaction"
    # Whether DDL runs inside a transaction (rolled back as one on failure).
    transactional_ddl: bool
    # COPY FROM STDIN for bulk enqueue, with ids drawn from the table's sequence.
    copy_from: bool = False
    # TRUNCATE empties a table at once (SQLite's plain DELETE does the same).
    truncate: bool = False
    # Per-table autovacuum settings (PostgreSQL storage parameters).
    autovacuum: bool = False
    # ALTER TABLE ... DROP CONSTRAINT (SQLite would have to rebuild the table).
    drop_constraint: bool = False
    # CREATE INDEX ... WHERE: rows outside the predicate cost the index nothing.
    partial_indexes: bool = False
    # INSERT/DELETE ... RETURNING inside WITH: a claim or a completion in one statement.
    writable_cte: bool = False
    # DELETE ... RETURNING: release claims and learn which were ours in one statement.
    delete_returning: bool = False
    # Where a cheap row-count estimate of a big table comes from (the dashboard):
    # "pg_class" (reltuples), "information_schema" (TABLE_ROWS) or "none" (capped count).
    row_estimate: str = "none"
    # A SELECT of the database's own time in naive UTC, microseconds (`clock.py`); None
    # where the database runs on this host's clock (SQLite, a file on this machine).
    utc_now_sql: str | None = None

    @classmethod
    def of(cls, dialect: Dialect) -> Capabilities:
        name = dialect.name
        if name == "postgresql":
            return cls(
                skip_locked=True,
                notify=dialect.driver == "psycopg",
                insert_many_returning=True,
                single_writer=False,
                lock_style="advisory_xact",
                transactional_ddl=True,
                copy_from=dialect.driver == "psycopg",
                truncate=True,
                autovacuum=True,
                drop_constraint=True,
                partial_indexes=True,
                writable_cte=True,
                delete_returning=True,
                row_estimate="pg_class",
                utc_now_sql="SELECT CAST(clock_timestamp() AT TIME ZONE 'UTC' AS TIMESTAMP)",
            )
        if name in ("mysql", "mariadb"):
            return cls(
                # MySQL 8+ and MariaDB 10.6+ have SKIP LOCKED; older ones are not supported.
                skip_locked=True,
                notify=False,
                insert_many_returning=bool(
                    dialect.insert_executemany_returning_sort_by_parameter_order
                ),
                single_writer=False,
                lock_style="get_lock",
                transactional_ddl=False,
                truncate=True,
                delete_returning=bool(dialect.delete_returning),
                row_estimate="information_schema",
                utc_now_sql="SELECT UTC_TIMESTAMP(6)",
            )
        if name == "sqlite":
            return cls(
                skip_locked=False,
                notify=False,
                insert_many_returning=bool(
                    dialect.insert_executemany_returning_sort_by_parameter_order
                ),
                single_writer=True,
                lock_style="write_transaction",
                transactional_ddl=True,
                partial_indexes=True,
                delete_returning=bool(dialect.delete_returning),
            )
        raise ValueError(
            f"database {name!r} is not supported; use sqlite, postgresql, mysql or mariadb"
        )


# SQLSTATEs and driver error codes that mean "try the transaction again".
_RETRY_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock n/a
_RETRY_MYSQL_CODES = {1205, 1213}  # lock wait timeout, deadlock
# ... those that mean "this table or column does not exist" (a schema not migrated) ...
_MISSING_SQLSTATES = {"42P01", "42703"}  # undefined table, undefined column
_MISSING_MYSQL_CODES = {1146, 1054}  # no such table, unknown column
# ... and those that mean "the server or the connection is gone".
_DISCONNECT_MYSQL_CODES = {1053, 2002, 2003, 2006, 2013, 2055, 1927, 4031}


def error_code(orig: BaseException | None) -> tuple[str | None, int | None]:
    """(SQLSTATE, numeric driver code) of a DB-API exception, where it has them."""
    if orig is None:
        return None, None
    sqlstate = getattr(orig, "sqlstate", None)
    code: int | None = None
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int):
        code = args[0]
    return sqlstate, code


def is_retryable(orig: BaseException | None) -> bool:
    sqlstate, code = error_code(orig)
    if sqlstate in _RETRY_SQLSTATES or code in _RETRY_MYSQL_CODES:
        return True
    text = str(orig).lower()
    return "database is locked" in text or "database table is locked" in text


def is_disconnect(orig: BaseException | None) -> bool:
    sqlstate, code = error_code(orig)
    if sqlstate is not None and (sqlstate.startswith("08") or sqlstate.startswith("57P0")):
        return True
    if code in _DISCONNECT_MYSQL_CODES:
        return True
    text = str(orig).lower()
    return any(
        s in text
        for s in (
            "connection refused",
            "server closed the connection",
            "connection is closed",
            "terminating connection",
            "the database system is",
            "lost connection",
            "can't connect",
            "connection timeout",
            "unable to open database file",
        )
    )


def is_missing_schema(orig: BaseException | None) -> bool:
    """A table or column Stalwart uses is missing: the schema needs `stalwart migrate`."""
    sqlstate, code = error_code(orig)
    if sqlstate in _MISSING_SQLSTATES or code in _MISSING_MYSQL_CODES:
        return True
    text = str(orig).lower()
    return "no such table" in text or "no such column" in text or "has no column named" in text
