"""Engines configured for a job queue's access pattern on each database."""

from __future__ import annotations

import select
import sqlite3
import time
from typing import Any
from urllib.parse import quote

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url

from ..errors import ConfigError
from .capabilities import is_disconnect

# SQLite waits this long for the write lock before giving up (then the store retries).
SQLITE_BUSY_TIMEOUT_S = 30.0
# The execution option of a SQLite transaction that only reads (`StoreBase.read`).
READS_ONLY = "stalwart_reads_only"


def normalize_url(url: str | URL) -> URL:
    """Pick our drivers for plain URLs: psycopg 3 for PostgreSQL, PyMySQL for MySQL."""
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ConfigError([f"database_url: {url!r} is not a database URL ({exc})"]) from exc
    driver = parsed.drivername
    if driver in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    if driver in ("mysql", "mariadb"):
        return parsed.set(drivername="mysql+pymysql")
    return parsed


def make_engine(
    url: str | URL,
    *,
    probe: bool = False,
    hangup_check: bool = True,
    transaction_pooling: bool = False,
    **options: Any,
) -> Engine:
    """``hangup_check``: look at a pooled connection's socket when it is checked out
    (`watch_hangups`).

    ``transaction_pooling``: the URL is a pooler's in transaction mode (PgBouncer):
    each transaction may run on another server connection, so psycopg must not prepare
    statements (they live in one server session: "prepared statement does not exist")
    and no session parameters are sent at connect (PgBouncer refuses ``options``).

    ``probe``: for health checks and scrapes: a pool of one or two connections, each
    checked before use (a connection left dead by an outage is never the answer: the
    check fails and a new one is made), with short connect and query timeouts. Pooled,
    not one connection per probe: a new PostgreSQL backend reads the catalog anew, and
    that doubled a scrape's time."""
    parsed = normalize_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if probe and parsed.database:
            # Probing must not create the file: opened read-write, never created.
            path = parsed.database
            options["creator"] = lambda: sqlite3.connect(
                f"file:{quote(path)}?mode=rw",
                uri=True,
                timeout=SQLITE_BUSY_TIMEOUT_S,
                check_same_thread=False,
            )
        return _sqlite_engine(parsed, **options)
    if probe:
        return create_engine(
            parsed,
            pool_size=1,
            max_overflow=1,
            pool_pre_ping=True,
            pool_recycle=300,
            connect_args=_probe_args(backend, transaction_pooling),
        )
    if transaction_pooling and backend == "postgresql":
        options.setdefault("connect_args", {})["prepare_threshold"] = None
    engine = _server_engine(parsed, backend, **options)

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: Any) -> None:
        # Ours is the wider test (MySQL's codes, PostgreSQL's 57P0x): the pool must be
        # invalidated whenever the store treats an error as a lost connection.
        if not ctx.is_disconnect and is_disconnect(ctx.original_exception):
            ctx.is_disconnect = True

    if hangup_check:
        watch_hangups(engine)
    return engine


def _server_engine(parsed: URL, backend: str, **options: Any) -> Engine:
    if backend in ("mysql", "mariadb"):
        # Gap locks of REPEATABLE READ only add deadlocks to a queue's short transactions.
        options.setdefault("isolation_level", "READ COMMITTED")
        options.setdefault("pool_recycle", 3600)
    if backend not in ("postgresql", "mysql", "mariadb"):
        raise ConfigError(
            [f"database_url: {backend!r} is not supported; use sqlite, postgresql or mysql"]
        )
    options.setdefault("pool_size", 10)
    options.setdefault("max_overflow", 20)
    return create_engine(parsed, **options)


def watch_hangups(engine: Engine) -> None:
    """Replace pooled connections the server hung up on, before they are used.

    After a restart or a failover every pooled connection is dead, and the server said
    so when it went (PostgreSQL sends "terminating connection", both close the socket).
    On checkout, one poll() of the socket, no round trip: readable while idle means the
    server spoke unasked, which it does when it closes; then every connection pooled
    before now is discarded and a fresh one is made. (`pool_pre_ping` finds the same with
    a round trip per checkout: benchmarks/README.md, "Stale connections".)
    """

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn: Any, _record: object, _proxy: object) -> None:
        fd = _socket_of(dbapi_conn)
        if fd is None or fd < 0:
            return
        poller = select.poll()
        poller.register(fd, select.POLLIN | select.POLLPRI)
        if poller.poll(0):
            raise exc.InvalidatePoolError("the server closed this pooled connection")


def _socket_of(dbapi_conn: Any) -> int | None:
    """The connection's socket: psycopg has fileno(); PyMySQL keeps it in ``_sock``."""
    try:
        fileno = getattr(dbapi_conn, "fileno", None)
        if callable(fileno):
            return int(fileno())
        sock = getattr(dbapi_conn, "_sock", None)
        return None if sock is None else int(sock.fileno())
    except Exception:  # closed already: the pool finds out on use
        return None


# A probe's connection gives up after this long, and so does its query.
PROBE_CONNECT_TIMEOUT_S = 3
PROBE_QUERY_TIMEOUT_S = 10


def _probe_args(backend: str, transaction_pooling: bool) -> dict[str, Any]:
    if backend == "postgresql" and transaction_pooling:
        # No per-session statement_timeout through the pooler: set one in its config.
        return {"connect_timeout": PROBE_CONNECT_TIMEOUT_S, "prepare_threshold": None}
    if backend == "postgresql":
        return {
            "connect_timeout": PROBE_CONNECT_TIMEOUT_S,
            "options": f"-c statement_timeout={PROBE_QUERY_TIMEOUT_S * 1000}",
        }
    return {"connect_timeout": PROBE_CONNECT_TIMEOUT_S, "read_timeout": PROBE_QUERY_TIMEOUT_S}


def _sqlite_engine(url: URL, **options: Any) -> Engine:
    memory = url.database in (None, "", ":memory:")
    if memory:
        raise ConfigError(
            [
                "database_url: an in-memory SQLite database cannot be shared between a "
                "worker and its clients; use a file, e.g. sqlite:///stalwart.db"
            ]
        )
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "check_same_thread": False},
        **options,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: object) -> None:
        # Take transaction control from pysqlite so BEGIN IMMEDIATE below is what runs.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
        _set_wal(cur)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Take the write lock at the start: a deferred transaction that reads and then
        # writes can fail with "database is locked" no busy timeout can cure. A
        # transaction that only reads says so, and reads a snapshot beside the writer.
        if conn.get_execution_options().get(READS_ONLY):
            conn.exec_driver_sql("BEGIN")
        else:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _set_wal(cur: sqlite3.Cursor) -> None:
    # Switching a new file to WAL takes an exclusive lock that the busy handler does not
    # always wait for: two processes opening a fresh database at once can collide here.
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
