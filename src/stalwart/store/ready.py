"""SQL of `stalwart_ready_executions`: the claim."""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Text,
    func,
    select,
    type_coerce,
)

from . import schema as s
from .base import StoreBase, as_datetime, driver_sql, driver_timestamp, utcnow
from .notify import ReadyListener
from .records import ClaimedJob, QueueSelector

r = s.ready_executions
j = s.jobs
_JOB_FIELDS = (
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
)


# The same, with enqueued_at as the driver returns it: SQLAlchemy's parsing of SQLite's
# timestamp text costs more per row than datetime.fromisoformat (see _claimed_job).
_JOB_FIELDS_AS_STORED = (*_JOB_FIELDS[:8], type_coerce(j.c.enqueued_at, Text), _JOB_FIELDS[9])

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
        claim = lambda c: self._claim(c, process_id, queues, limit)  # noqa: E731
        if self.caps.writable_cte and len(queues.patterns) == 1:
            return self.run_statement(claim)
        return self.run(claim)

    def _claim(
        self, conn: Connection, process_id: int | None, queues: QueueSelector, limit: int
    ) -> list[ClaimedJob]:
        now = utcnow()
        claimed: list[ClaimedJob] = []
        for pattern in queues.patterns:
            remaining = limit - len(claimed)
            if remaining <= 0:
                break
            # Rows come in claim order: priority (larger first), then FIFO.
            if self.caps.writable_cte:
                rows = self._claim_one_statement(
                    conn, pattern, [c.id for c in claimed], remaining, process_id, now
                )
            else:
                where = _queue_condition(pattern)
                if claimed:  # a row already taken by an earlier, overlapping pattern
                    where = where & r.c.job_id.not_in([c.id for c in claimed])
                rows = self._claim_statements(conn, where, remaining, process_id, now)
            claimed.extend(_claimed_job(row, now) for row in rows)
        return claimed

    def _claim_one_statement(
        self,
        conn: Connection,
        pattern: str,
        taken: list[int],
        limit: int,
        process_id: int | None,
        now: datetime,
    ) -> Sequence[Any]:
        """Pick, delete from ready, insert into claimed and read the jobs: one round trip.

        The SQL is written once per kind of pattern and sent as it is: building and
        compiling the statement each time cost more than the claim of a hundred rows.
        """
        params: dict[str, Any] = {"limit": limit, "pid": process_id, "now": now}
        if pattern != "*":
            params["pattern"] = _like_prefix(pattern[:-1]) if pattern.endswith("*") else pattern
        if taken:
            params["taken"] = taken
        sql = _claim_sql(_pattern_kind(pattern), bool(taken))
        return conn.exec_driver_sql(sql, params).all()

    def _claim_statements(
        self,
        conn: Connection,
        where: ColumnElement[bool],
        limit: int,
        process_id: int | None,
        now: datetime,
    ) -> list[Any]:
        """Pick (with the jobs' fields), insert into claimed, delete from ready."""
        pick = (
            select(*_JOB_FIELDS_AS_STORED)
            .select_from(r.join(j, j.c.id == r.c.job_id))
            .where(where)
            .order_by(r.c.priority.desc(), r.c.job_id)
            .limit(limit)
        )
        if self.caps.skip_locked:
            pick = pick.with_for_update(skip_locked=True)
        rows = list(conn.execute(pick).all())
        if not rows:
            return []
        ids = [row[0] for row in rows]
        created = driver_timestamp(now)
        conn.exec_driver_sql(
            driver_sql(conn, _INSERT_CLAIMED), [(i, process_id, created) for i in ids]
        )
        marks = ", ".join("?" * len(ids))
        conn.exec_driver_sql(
            driver_sql(conn, f"DELETE FROM {r.name} WHERE job_id IN ({marks})"), tuple(ids)
        )
        return rows

    def ready_listener(
        self, on_ready: Callable[[str], None], stopping: threading.Event
    ) -> ReadyListener | None:
        """A LISTEN thread calling ``on_ready(queue)`` when jobs become ready, where the
        database can notify (else None: polling alone)."""
        if not self.caps.notify:
            return None
        url = self.engine.url.render_as_string(hide_password=False)
        return ReadyListener(url, on_ready, stopping)

    def ready_count(self, queue_name: str | None = None) -> int:
        stmt = select(func.count()).select_from(r)
        if queue_name is not None:
            stmt = stmt.where(r.c.queue_name == queue_name)
        return int(self.run(lambda c: c.execute(stmt).scalar_one()))


def _queue_condition(pattern: str) -> ColumnElement[bool]:
    """The WHERE clause for one queue pattern, leaving out paused queues."""
    not_paused = r.c.queue_name.not_in(select(s.pauses.c.queue_name))
    if pattern == "*":
        return not_paused
    if pattern.endswith("*"):
        return r.c.queue_name.startswith(pattern[:-1], autoescape=True) & not_paused
    return (r.c.queue_name == pattern) & not_paused


def _claimed_job(row: Any, claimed_at: datetime) -> ClaimedJob:
    # Positional unpacking: attribute access on a row costs more, a hundred times a claim.
    job_id, task, queue, priority, args, kwargs, context, attempts, enqueued, limits = row
    enqueued = as_datetime(enqueued)
    return ClaimedJob(
        job_id, task, queue, priority, args, kwargs, context, attempts, enqueued, claimed_at, limits
    )


def _pattern_kind(pattern: str) -> str:
    return "all" if pattern == "*" else "prefix" if pattern.endswith("*") else "name"


def _like_prefix(prefix: str) -> str:
    """A LIKE pattern matching names that start with ``prefix`` (escape character '/')."""
    escaped = prefix.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return escaped + "%"


@functools.cache
def _claim_sql(kind: str, excludes_taken: bool) -> str:
    """The one-statement claim (databases with writable CTEs), in the driver's
    pyformat style. Each step finds its rows through ``= ANY(ARRAY(...))``: an index
    lookup whatever the statistics say. A join let a stale estimate (fresh tables,
    autovacuum off) pick hash joins over full scans of ready and jobs on every claim."""
    conditions = [f"queue_name NOT IN (SELECT queue_name FROM {s.pauses.name})"]
    if kind == "name":
        conditions.append("queue_name = %(pattern)s")
    elif kind == "prefix":
        conditions.append("queue_name LIKE %(pattern)s ESCAPE '/'")
    if excludes_taken:  # rows an earlier, overlapping pattern of this claim took
        conditions.append("NOT (job_id = ANY(%(taken)s))")
    fields = ", ".join(c.name for c in _JOB_FIELDS)
    ready, claimed = r.name, s.claimed_executions.name
    return (
        f"WITH picked AS (SELECT job_id FROM {ready} WHERE {' AND '.join(conditions)}"
        " ORDER BY priority DESC, job_id LIMIT %(limit)s FOR UPDATE SKIP LOCKED),"
        f" deleted AS (DELETE FROM {ready}"
        " WHERE job_id = ANY(ARRAY(SELECT job_id FROM picked)) RETURNING job_id),"
        f" inserted AS (INSERT INTO {claimed} (job_id, process_id, created_at)"
        " SELECT job_id, CAST(%(pid)s AS BIGINT), CAST(%(now)s AS TIMESTAMP) FROM deleted"
        " RETURNING job_id)"
        f" SELECT {fields} FROM {j.name} WHERE id = ANY(ARRAY(SELECT job_id FROM inserted))"
        " ORDER BY priority DESC, id"
    )
