"""SQL of `stalwart_jobs`: enqueue, read, clear."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, and_, case, delete, func, insert, literal, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Cancelled, JobNotFound, UniqueJobExists, error_record
from ..names import is_job_id
from . import flow
from . import schema as s
from .base import StoreBase, inserted_id
from .cancellations import request_cancel
from .records import JobRow, NewJob
from .semaphores import Waiting, make_ready, release

# Rows per multi-row INSERT statement: big enough to amortize the round trip, small
# enough to stay under every driver's parameter limit (SQLite: 32766).
INSERT_CHUNK = 1000


class JobsStore(StoreBase):
    def jobs_enqueue(
        self,
        jobs: Sequence[NewJob],
        conn: Connection | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Insert jobs and their ready or scheduled executions; return their ids in order.

        With ``conn``, the rows are written in the caller's transaction and commit or roll
        back with it. ``now`` (default: the time of the insert) is their ``enqueued_at``,
        so the caller's result says what the row says.
        """
        if not jobs:
            return []
        return self.using(conn, lambda c: self._insert_jobs(c, jobs, now or self.clock.now()))

    def _insert_jobs(self, conn: Connection, jobs: Sequence[NewJob], now: datetime) -> list[int]:
        if any(x.batch_id is not None or x.after for x in jobs):
            return flow.insert_jobs(self, conn, jobs, now)
        if any(j.unique_key is not None for j in jobs):
            return [self._insert_unique(conn, j, now) for j in jobs]
        return self._insert_plain(conn, jobs, now)

    def _insert_plain(self, conn: Connection, jobs: Sequence[NewJob], now: datetime) -> list[int]:
        """Jobs without unique keys, in multi-row INSERTs (PostgreSQL: COPY, postgres.py)."""
        ids: list[int] = []
        for start in range(0, len(jobs), INSERT_CHUNK):
            chunk = jobs[start : start + INSERT_CHUNK]
            ids.extend(self._insert_job_rows(conn, chunk, now))
        self._place(conn, list(zip(ids, jobs, strict=True)), now)
        return ids

    def _place(self, conn: Connection, jobs: list[tuple[int, NewJob]], now: datetime) -> None:
        """Give new jobs their execution row: ready (or blocked), or scheduled."""
        due = [
            Waiting(job_id, j.queue_name, j.priority, j.concurrency_limits)
            for job_id, j in jobs
            if j.scheduled_at <= now
        ]
        scheduled = [
            {
                "job_id": job_id,
                "queue_name": j.queue_name,
                "priority": j.priority,
                "scheduled_at": j.scheduled_at,
                "created_at": now,
            }
            for job_id, j in jobs
            if j.scheduled_at > now
        ]
        if due:
            if discarded := make_ready(conn, due, now):
                flow.settle(self, conn, [(i, False) for i in discarded], now)
            self.notify_ready(conn, (w.queue_name for w in due))
        if scheduled:
            conn.execute(insert(s.scheduled_executions), scheduled)

    def _insert_unique(self, conn: Connection, job: NewJob, now: datetime) -> int:
        """Insert a job with a unique key; on a clash, act on ``job.unique_conflict``."""
        for _ in range(3):
            try:
                with conn.begin_nested():
                    [job_id] = self._insert_job_rows(conn, [job], now)
                self._place(conn, [(job_id, job)], now)
                return job_id
            except IntegrityError:
                existing = conn.execute(
                    select(s.jobs.c.id).where(s.jobs.c.unique_key == job.unique_key)
                ).scalar()
                if existing is None:
                    continue  # it finished meanwhile: try again
                if job.unique_conflict == "ignore":
                    return int(existing)
                if job.unique_conflict == "replace":
                    if not _cancel_waiting(conn, int(existing), now, "replaced"):
                        return int(existing)  # running: it cannot be replaced
                    flow.settle(self, conn, [(int(existing), False)], now)
                    continue
                raise UniqueJobExists(
                    f"a job with unique key {job.unique_key!r} is not finished yet "
                    f"(job {existing})",
                    int(existing),
                ) from None
        raise UniqueJobExists(f"could not enqueue unique key {job.unique_key!r}", 0)

    def _insert_job_rows(
        self, conn: Connection, chunk: Sequence[NewJob], now: datetime
    ) -> list[int]:
        rows = [
            {
                "task_name": j.task_name,
                "queue_name": j.queue_name,
                "priority": j.priority,
                "args": j.args,
                "kwargs": j.kwargs,
                "context": j.context,
                "concurrency_limits": j.concurrency_limits,
                "unique_key": j.unique_key,
                "scheduled_at": j.scheduled_at,
                "enqueued_at": now,
                "attempts": 0,
                "crashes": 0,
                "timeout": j.timeout,
                "expires_at": j.expires_at,
                "rate_limits": j.rate_limits,
                "interruptions": 0,
                "batch_id": j.batch_id,
            }
            for j in chunk
        ]
        if len(rows) == 1:
            return [inserted_id(conn.execute(insert(s.jobs), rows[0]))]
        if self.caps.insert_many_returning:
            stmt = insert(s.jobs).returning(s.jobs.c.id, sort_by_parameter_order=True)
            return [int(r[0]) for r in conn.execute(stmt, rows)]
        # Without ordered RETURNING, one statement per row is the only exact mapping.
        return [inserted_id(conn.execute(insert(s.jobs), r)) for r in rows]

    def job_cancel(self, job_id: int) -> bool:
        """Cancel a job that has not ended: a waiting one (scheduled, ready, blocked,
        throttled, suspect) leaves its line at once; for a running one a request is left
        for its worker. False if it has ended (or never existed)."""

        def body(conn: Connection) -> bool:
            now = self.clock.now()
            if _cancel_waiting(conn, job_id, now, "by request"):
                flow.settle(self, conn, [(job_id, False)], now)
                return True
            return request_cancel(conn, job_id)

        # A number no id column can hold names no job (and must not reach the driver).
        return is_job_id(job_id) and self.run(body)

    def job_get(self, job_id: int) -> JobRow:
        row = self.read(lambda c: job_rows(c, [job_id])) if is_job_id(job_id) else []
        if not row:
            raise JobNotFound(f"no job with id {job_id}")
        return row[0]

    def jobs_get(self, job_ids: Sequence[int]) -> list[JobRow]:
        ids = [i for i in job_ids if is_job_id(i)]
        return self.read(lambda c: job_rows(c, ids))

    def jobs_clear_finished(self, finished_before: datetime, batch_size: int = 1000) -> int:
        """Delete finished jobs older than ``finished_before``, one short batch at a time."""
        total = 0
        while True:
            deleted = self.run(lambda c: self._clear_batch(c, finished_before, batch_size))
            total += deleted
            if deleted < batch_size:
                return total

    def _clear_batch(self, conn: Connection, before: datetime, batch_size: int) -> int:
        # Select ids first: MySQL cannot LIMIT a DELETE with a subquery on the same table.
        ids = list(
            conn.execute(
                select(s.jobs.c.id)
                .where(and_(s.jobs.c.finished_at.is_not(None), s.jobs.c.finished_at < before))
                .order_by(s.jobs.c.finished_at)
                .limit(batch_size)
            ).scalars()
        )
        if not ids:
            return 0
        conn.execute(delete(s.jobs).where(s.jobs.c.id.in_(ids)))
        return len(ids)


def _cancel_waiting(conn: Connection, job_id: int, now: datetime, why: str) -> bool:
    """Take a scheduled, ready or blocked job out of line, as failed with a Cancelled
    error (its unique key freed). False if the job is not waiting (running, done)."""
    held = conn.execute(
        select(s.jobs.c.concurrency_limits, s.jobs.c.queue_name, s.jobs.c.errors).where(
            s.jobs.c.id == job_id
        )
    ).first()
    if held is None:
        return False
    was_ready = conn.execute(
        delete(s.ready_executions).where(s.ready_executions.c.job_id == job_id)
    ).rowcount
    other = sum(
        conn.execute(delete(t).where(t.c.job_id == job_id)).rowcount
        for t in (
            s.scheduled_executions,
            s.blocked_executions,
            s.throttled_executions,
            s.waiting_executions,
        )
    )
    # A suspect still holds its slots, like a ready job.
    was_ready += conn.execute(
        delete(s.suspect_executions).where(s.suspect_executions.c.job_id == job_id)
    ).rowcount
    if not was_ready and not other:
        return False
    if was_ready:
        release(conn, [held.concurrency_limits], now)  # a ready job holds its slots
    error = error_record(Cancelled(f"cancelled ({why})"), now)
    errors = (json.loads(held.errors) if held.errors else []) + [error]
    conn.execute(
        update(s.jobs)
        .where(s.jobs.c.id == job_id)
        .values(unique_key=None, errors=json.dumps(errors))
    )
    conn.execute(
        insert(s.failed_executions).values(
            job_id=job_id,
            queue_name=held.queue_name,
            error_class=error["class"],
            error=json.dumps(error),
            created_at=now,
        )
    )
    return True


def job_rows(conn: Connection, job_ids: Sequence[int]) -> list[JobRow]:
    """Jobs by id, each with its status (from the execution table holding it)."""
    j = s.jobs
    claimed = s.claimed_executions
    status = case(
        (j.c.finished_at.is_not(None), literal("SUCCESSFUL")),
        (claimed.c.job_id.is_not(None), literal("RUNNING")),
        (s.ready_executions.c.job_id.is_not(None), literal("READY")),
        (s.scheduled_executions.c.job_id.is_not(None), literal("SCHEDULED")),
        (s.blocked_executions.c.job_id.is_not(None), literal("BLOCKED")),
        (s.waiting_executions.c.job_id.is_not(None), literal("WAITING")),
        (s.failed_executions.c.job_id.is_not(None), literal("FAILED")),
        # Waiting to run alone after a crash: ready, for whoever reads a status.
        (s.suspect_executions.c.job_id.is_not(None), literal("READY")),
        # In line for a start under its rate: scheduled for when one frees.
        (s.throttled_executions.c.job_id.is_not(None), literal("SCHEDULED")),
        else_=literal("UNKNOWN"),
    ).label("status")
    joined = (
        j.outerjoin(claimed, claimed.c.job_id == j.c.id)
        .outerjoin(s.ready_executions, s.ready_executions.c.job_id == j.c.id)
        .outerjoin(s.scheduled_executions, s.scheduled_executions.c.job_id == j.c.id)
        .outerjoin(s.blocked_executions, s.blocked_executions.c.job_id == j.c.id)
        .outerjoin(s.suspect_executions, s.suspect_executions.c.job_id == j.c.id)
        .outerjoin(s.throttled_executions, s.throttled_executions.c.job_id == j.c.id)
        .outerjoin(s.failed_executions, s.failed_executions.c.job_id == j.c.id)
        .outerjoin(s.waiting_executions, s.waiting_executions.c.job_id == j.c.id)
    )
    started = func.coalesce(claimed.c.created_at, j.c.started_at).label("started_at_")
    stmt = (
        select(j, status, started)
        .select_from(joined)
        .where(j.c.id.in_(list(job_ids)))
        .order_by(j.c.id)
    )
    out = []
    for r in conn.execute(stmt).mappings():
        out.append(
            JobRow(
                id=int(r["id"]),
                status=str(r["status"]),
                task_name=r["task_name"],
                queue_name=r["queue_name"],
                priority=int(r["priority"]),
                args=r["args"],
                kwargs=r["kwargs"],
                context=r["context"],
                concurrency_limits=r["concurrency_limits"],
                unique_key=r["unique_key"],
                scheduled_at=r["scheduled_at"],
                enqueued_at=r["enqueued_at"],
                started_at=r["started_at_"],
                finished_at=r["finished_at"],
                attempts=int(r["attempts"]),
                crashes=int(r["crashes"]),
                errors=r["errors"],
                result=r["result"],
                timeout=r["timeout"],
                expires_at=r["expires_at"],
                interruptions=int(r["interruptions"] or 0),
                history=r["history"],
                batch_id=r["batch_id"],
                progress=r["progress"],
            )
        )
    return out
