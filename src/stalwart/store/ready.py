"""SQL of `stalwart_ready_executions`: the claim.

One generic claim for every database: pick the rows in claim order (with
``FOR UPDATE SKIP LOCKED`` where the database has it), insert them into claimed,
delete them from ready, all in one short transaction. PostgreSQL does the same in one
statement (`postgres.py`).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, select

from . import schema as s
from .base import StoreBase, as_datetime, driver_sql, driver_timestamp
from .protocol import Listener
from .records import ClaimedJob, QueueSelector

r = s.ready_executions
j = s.jobs
# What a worker needs of a claimed job, in `ClaimedJob` order.
JOB_FIELDS = (
    j.c.id,
    j.c.task_name,
    j.c.queue_name,
    j.c.priority,
    j.c.args,
    j.c.kwargs,
    j.c.context,
    j.c.attempts,
    j.c.enqueued_at,
    j.c.concurrency_limits,
    j.c.timeout,
    j.c.expires_at,
    j.c.rate_limits,
    j.c.scheduled_at,
    j.c.batch_id,
    j.c.has_dependents,
)
_INSERT_CLAIMED = (
    f"INSERT INTO {s.claimed_executions.name} (job_id, process_id, created_at) VALUES (?, ?, ?)"
)


class ReadyStore(StoreBase):
    def ready_claim(
        self, process_id: int | None, queues: QueueSelector, limit: int
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` ready jobs for ``process_id`` in one short transaction.

        Queues are taken in the order given, each in priority order (larger first), then
        by id. Paused queues are skipped (checked inside the claim, so a pause takes
        effect at once). With SKIP LOCKED, concurrent claimers pass over each other's
        rows instead of waiting; on a single-writer database the transaction holds the
        write lock from its start.
        """
        if limit <= 0:
            return []
        rows, now = self.run(lambda conn: self._claim(conn, process_id, queues, limit))
        return claimed_jobs(rows, now)

    def _claim(
        self, conn: Connection, process_id: int | None, queues: QueueSelector, limit: int
    ) -> tuple[list[Any], datetime]:
        """The claimed rows and the claim's time; turned into `ClaimedJob`s after the
        commit (`claimed_jobs`), so a single-writer database's lock is not held for it."""
        now = self.clock.now()
        claimed: list[Any] = []
        for pattern in queues.patterns:
            remaining = limit - len(claimed)
            if remaining <= 0:
                break
            # Rows an earlier, overlapping pattern of this claim took are left out.
            taken = [row[0] for row in claimed]
            claimed.extend(self._claim_pattern(conn, pattern, taken, remaining, process_id, now))
        return claimed, now

    def _claim_pattern(
        self,
        conn: Connection,
        pattern: str,
        taken: list[int],
        limit: int,
        process_id: int | None,
        now: datetime,
    ) -> Sequence[Any]:
        """Claim up to ``limit`` jobs of one queue pattern: pick them (with the jobs'
        fields), insert them into claimed, delete them from ready.

        The insert and delete are sent to the driver as they are: SQLAlchemy's
        per-value processing cost more than the database's own work here.
        """
        skip_locked = self.caps.skip_locked
        return claim_rows(conn, r, pattern, taken, limit, process_id, now, skip_locked)

    def ready_listener(
        self, on_ready: Callable[[str], None], stopping: threading.Event
    ) -> Listener | None:
        """A thread calling ``on_ready(queue)`` when jobs become ready, where the database
        can send notifications (`postgres.py`); None here: workers poll."""
        return None


def claim_rows(
    conn: Connection,
    source: Table,
    pattern: str,
    taken: list[int],
    limit: int,
    process_id: int | None,
    now: datetime,
    skip_locked: bool,
) -> Sequence[Any]:
    """Move up to ``limit`` rows of ``source`` (ready, or suspects) of one queue pattern,
    leaving out ``taken``, to claimed, in claim order; return the jobs' fields
    (`JOB_FIELDS`, times as the driver returns them). Without SKIP LOCKED (SQLite) the
    write lock, held from the transaction's start, keeps claimers apart."""
    sql = pick_sql(source.name, pattern_kind(pattern), len(taken), skip_locked)
    value = pattern_value(pattern)
    params = [*([] if value is None else [value]), *taken, limit]
    rows = conn.exec_driver_sql(driver_sql(conn, sql), tuple(params)).fetchall()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    created = driver_timestamp(now)
    conn.exec_driver_sql(driver_sql(conn, _INSERT_CLAIMED), [(i, process_id, created) for i in ids])
    marks = ", ".join("?" * len(ids))
    sql = f"DELETE FROM {source.name} WHERE job_id IN ({marks})"
    conn.exec_driver_sql(driver_sql(conn, sql), tuple(ids))
    return rows


def pattern_kind(pattern: str) -> str:
    return "all" if pattern == "*" else "prefix" if pattern.endswith("*") else "name"


def pattern_value(pattern: str) -> str | None:
    """What a pattern's condition (`pattern_sql`) is given: nothing for "*", the name,
    or for "name*" a LIKE pattern of that prefix (escape character '/')."""
    if pattern == "*":
        return None
    if not pattern.endswith("*"):
        return pattern
    escaped = pattern[:-1].replace("/", "//").replace("%", "/%").replace("_", "/_")
    return escaped + "%"


def pattern_sql(kind: str, column: str, marker: str) -> list[str]:
    """The conditions of one queue pattern on ``column``, paused queues left out, its
    value (`pattern_value`) written as ``marker``: for the claims written out as SQL."""
    conditions = [f"{column} NOT IN (SELECT queue_name FROM {s.pauses.name})"]
    if kind == "name":
        conditions.append(f"{column} = {marker}")
    elif kind == "prefix":
        conditions.append(f"{column} LIKE {marker} ESCAPE '/'")
    return conditions


@functools.lru_cache(maxsize=512)  # one per source, kind and count of ids left out
def pick_sql(source: str, kind: str, taken: int, skip_locked: bool) -> str:
    """The claim's pick in ``?`` style: written out, since building and compiling
    SQLAlchemy's statement took five times what SQLite took to run it, inside the write
    lock. Parameters: the pattern (unless "all"), the taken ids, the limit."""
    conditions = pattern_sql(kind, f"{source}.queue_name", "?")
    if taken:
        conditions.append(f"{source}.job_id NOT IN ({', '.join('?' * taken)})")
    fields = ", ".join(f"{j.name}.{c.name}" for c in JOB_FIELDS)
    return (
        f"SELECT {fields} FROM {source} JOIN {j.name} ON {j.name}.id = {source}.job_id"
        f" WHERE {' AND '.join(conditions)}"
        f" ORDER BY {source}.priority DESC, {source}.job_id LIMIT ?"
        + (" FOR UPDATE SKIP LOCKED" if skip_locked else "")
    )


def queue_condition(pattern: str, source: Table = r) -> ColumnElement[bool]:
    """The WHERE clause for one queue pattern of ``source``, leaving out paused queues."""
    not_paused = source.c.queue_name.not_in(select(s.pauses.c.queue_name))
    if pattern == "*":
        return not_paused
    if pattern.endswith("*"):
        return source.c.queue_name.startswith(pattern[:-1], autoescape=True) & not_paused
    return (source.c.queue_name == pattern) & not_paused


def claimed_jobs(rows: Sequence[Any], claimed_at: datetime) -> list[ClaimedJob]:
    return [claimed_job(row, claimed_at) for row in rows]


def claimed_job(row: Any, claimed_at: datetime) -> ClaimedJob:
    # Positional unpacking: attribute access on a row costs more, a hundred times a claim.
    (job_id, task, queue, priority, args, kwargs, context, attempts, enqueued, limits) = row[:10]
    timeout, expires, rates, due, batch_id, has_dependents = row[10:]
    return ClaimedJob(
        job_id,
        task,
        queue,
        priority,
        args,
        kwargs,
        context,
        attempts,
        as_datetime(enqueued),
        claimed_at,
        limits,
        timeout,
        None if expires is None else as_datetime(expires),
        rates,
        None if due is None else as_datetime(due),
        batch_id,
        None if has_dependents is None else bool(has_dependents),  # SQLite: 0 or 1
    )
