"""The store's foundation: engine, capabilities, transactions that survive contention,
and the few helpers the hot statements use to talk to a driver directly."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, TypeVar

from sqlalchemy import Connection, CursorResult, Engine, text
from sqlalchemy.exc import DBAPIError

from ..errors import DatabaseUnavailable, SchemaNotMigrated
from .capabilities import Capabilities, is_disconnect, is_missing_schema, is_retryable
from .clock import Clock

T = TypeVar("T")
log = logging.getLogger("stalwart.store")


def inserted_id(result: CursorResult[Any]) -> int:
    """The primary key of the row a single-row INSERT wrote."""
    key = result.inserted_primary_key
    if key is None:
        raise RuntimeError("the database did not report the id of the inserted row")
    return int(key[0])


def utcnow() -> datetime:
    """This host's time, naive UTC (every timestamp column holds UTC without a zone).
    Times that decide when something runs or dies come from the store's `Clock` instead
    (the database's time)."""
    return datetime.now(UTC).replace(tzinfo=None)


def driver_sql(conn: Connection, sql: str) -> str:
    """``sql`` written with ``?`` placeholders, in the driver's own parameter style.

    For the few statements run per claim and per completion on databases without
    writable CTEs: sent as they are, without SQLAlchemy's compilation and per-value
    processing, which cost more than the database's own work there.
    """
    style = conn.dialect.paramstyle
    if style == "qmark":
        return sql
    if style in ("format", "pyformat"):
        return sql.replace("?", "%s")
    raise NotImplementedError(f"driver parameter style {style!r}")


def driver_timestamp(value: datetime) -> str:
    """A naive UTC datetime as the text every supported database stores and compares
    (SQLAlchemy's own SQLite format; MySQL parses it into DATETIME(6))."""
    return value.isoformat(" ", "microseconds")


def as_datetime(value: datetime | str) -> datetime:
    """A timestamp read through the driver: SQLite hands back the stored text."""
    return datetime.fromisoformat(value) if isinstance(value, str) else value


_last_second: tuple[int, str] = (0, "")


def epoch_timestamp(seconds: float) -> str:
    """`driver_timestamp` of a time.time() value; the date and time of day are formatted
    once per second (a batch of finished jobs shares a few)."""
    global _last_second
    whole = int(seconds)
    known, text = _last_second
    if whole != known:
        text = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%d %H:%M:%S")
        _last_second = (whole, text)
    return f"{text}.{int((seconds - whole) * 1_000_000):06d}"


def from_epoch(seconds: float) -> datetime:
    """Naive UTC for a time.time() value."""
    return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)


def to_epoch(at: datetime) -> float:
    """Seconds since the epoch of a naive-UTC (or aware) datetime."""
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def _first(exc: DBAPIError) -> str:
    """The first line of the driver's message."""
    text = str(exc.orig).strip()
    return text.splitlines()[0] if text else ""


class StoreBase:
    # How often a transaction that hit a deadlock or a busy SQLite file is tried again.
    max_retries = 8

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.caps = Capabilities.of(engine.dialect)
        # For work done in one statement: atomic on its own, so no BEGIN/COMMIT round trips.
        self.autocommit_engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        # The database's time, as this host reads it (`clock.py`).
        self.clock = Clock(self.clock_read if self.caps.utc_now_sql else None)

    def clock_read(self) -> datetime:
        """The database's own time now, naive UTC (where it has its own: `Clock`)."""
        sql = self.caps.utc_now_sql
        if sql is None:
            return utcnow()
        # `run`, not `run_statement`: see `process_heartbeat`.
        value = self.run(lambda conn: conn.execute(text(sql)).scalar_one())
        return as_datetime(value)

    def read(self, body: Callable[[Connection], T]) -> T:
        """`run` for a body that only reads: retried once on a lost connection wherever it
        was lost, even at COMMIT (there is nothing to write twice)."""
        return self.run(body, reads_only=True)

    def run_statement(self, body: Callable[[Connection], T]) -> T:
        """Like `run`, for a body that is a single statement (atomic by itself)."""
        return self.run(body, engine=self.autocommit_engine)

    def run(
        self,
        body: Callable[[Connection], T],
        engine: Engine | None = None,
        *,
        reads_only: bool = False,
    ) -> T:
        """Run ``body`` in one transaction; retry it on deadlocks and lock timeouts.

        A connection lost before COMMIT was sent is retried once on a fresh connection:
        the server rolled the transaction back, nothing of it was written (after a
        restart every pooled connection is dead, and the pool is invalidated). A
        connection lost at COMMIT, or in a statement that commits by itself (the
        autocommit engine), may have written: that raises DatabaseUnavailable, unless
        ``reads_only``. So does a second loss, or a failure to connect.
        """
        engine = engine or self.engine
        autocommit = engine is self.autocommit_engine
        reconnect = True
        attempt = 0
        while True:
            started = committing = False
            try:
                with self.transaction(engine, reads_only=reads_only) as conn:
                    started = True
                    result = body(conn)
                    committing = True
                return result
            except DBAPIError as exc:
                if exc.connection_invalidated or is_disconnect(exc.orig):
                    may_have_written = committing or autocommit
                    if reconnect and started and (reads_only or not may_have_written):
                        reconnect = False
                        log.info("connection lost before commit (%s); retrying once", _first(exc))
                        continue
                    unsure = started and may_have_written and not reads_only
                    raise DatabaseUnavailable(
                        f"database unavailable: {type(exc.orig).__name__}: {_first(exc)}"
                        + (" (the commit may or may not have happened)" if unsure else "")
                    ) from exc
                if is_missing_schema(exc.orig):
                    raise SchemaNotMigrated(
                        f"the database has no Stalwart tables, or lacks a migration "
                        f"({_first(exc)}): run `stalwart migrate`"
                    ) from exc
                if attempt < self.max_retries and is_retryable(exc.orig):
                    # Jittered backoff so colliding transactions do not collide again.
                    time.sleep(min(0.5, 0.005 * 2**attempt) * random.random())
                    attempt += 1
                    continue
                raise

    def transaction(
        self, engine: Engine, *, reads_only: bool = False
    ) -> AbstractContextManager[Connection]:
        """A connection in a new transaction (SQLite's store takes its writer turn first,
        unless the transaction only reads)."""
        return engine.begin()

    def notify_ready(self, conn: Connection, queues: Iterable[str]) -> None:
        """Tell waiting workers that these queues got ready jobs (at commit), where the
        database can (`postgres.py`); generically nothing: workers poll."""

    def using(self, conn: Connection | None, body: Callable[[Connection], T]) -> T:
        """Run ``body`` in the caller's connection (their transaction), or in our own."""
        if conn is None:
            return self.run(body)
        return body(conn)
