"""SQL of `stalwart_ready_executions`: the claim.

One generic claim for every database: pick the rows in claim order (with
``FOR UPDATE SKIP LOCKED`` where the database has it), insert them into claimed,
delete them from ready, all in one short transaction. PostgreSQL does the same in one
statement (`postgres.py`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table, Text, select, type_coerce

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
# The same, with the times as the driver returns them: SQLAlchemy's parsing of SQLite's
# timestamp text costs more per row than datetime.fromisoformat (see claimed_job).
_JOB_FIELDS_AS_STORED = (
    *JOB_FIELDS[:8],
    type_coerce(j.c.enqueued_at, Text),
    *JOB_FIELDS[9:11],
    type_coerce(j.c.expires_at, Text),
    JOB_FIELDS[12],
    type_coerce(j.c.scheduled_at, Text),
    *JOB_FIELDS[14:],
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
        return self.run(lambda conn: self._claim(conn, process_id, queues, limit))

    def _claim(
        self, conn: Connection, process_id: int | None, queues: QueueSelector, limit: int
    ) -> list[ClaimedJob]:
        now = self.clock.now()
        claimed: list[ClaimedJob] = []
        for pattern in queues.patterns:
            remaining = limit - len(claimed)
            if remaining <= 0:
                break
            # Rows an earlier, overlapping pattern of this claim took are left out.
            taken = [c.id for c in claimed]
            rows = self._claim_pattern(conn, pattern, taken, remaining, process_id, now)
            claimed.extend(claimed_job(row, now) for row in rows)
        return claimed

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
        where = queue_condition(pattern)
        if taken:
            where = where & r.c.job_id.not_in(taken)
        return claim_rows(conn, r, where, limit, process_id, now)

    def ready_listener(
        self, on_ready: Callable[[str], None], stopping: threading.Event
    ) -> Listener | None:
        """A thread calling ``on_ready(queue)`` when jobs become ready, where the database
        can send notifications (`postgres.py`); None here: workers poll."""
        return None


def claim_rows(
    conn: Connection,
    source: Table,
    where: ColumnElement[bool],
    limit: int,
    process_id: int | None,
    now: datetime,
) -> Sequence[Any]:
    """Move up to ``limit`` rows of ``source`` (ready, or suspects) matching ``where`` to
    claimed, in claim order; return the jobs' fields (`JOB_FIELDS`)."""
    pick = (
        select(*_JOB_FIELDS_AS_STORED)
        .select_from(source.join(j, j.c.id == source.c.job_id))
        .where(where)
        .order_by(source.c.priority.desc(), source.c.job_id)
        .limit(limit)
        # Dropped by databases without row locks (SQLite: the write lock is held).
        .with_for_update(skip_locked=True)
    )
    rows = conn.execute(pick).all()
    if not rows:
        return []
    ids = [row[0] for row in rows]
    created = driver_timestamp(now)
    conn.exec_driver_sql(driver_sql(conn, _INSERT_CLAIMED), [(i, process_id, created) for i in ids])
    marks = ", ".join("?" * len(ids))
    sql = f"DELETE FROM {source.name} WHERE job_id IN ({marks})"
    conn.exec_driver_sql(driver_sql(conn, sql), tuple(ids))
    return rows


def queue_condition(pattern: str, source: Table = r) -> ColumnElement[bool]:
    """The WHERE clause for one queue pattern of ``source``, leaving out paused queues."""
    not_paused = source.c.queue_name.not_in(select(s.pauses.c.queue_name))
    if pattern == "*":
        return not_paused
    if pattern.endswith("*"):
        return source.c.queue_name.startswith(pattern[:-1], autoescape=True) & not_paused
    return (source.c.queue_name == pattern) & not_paused


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
        has_dependents,
    )
