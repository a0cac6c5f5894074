"""SQL of `stalwart_ready_executions`: the claim."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, delete, func, insert, select, true

from . import schema as s
from .base import StoreBase, utcnow
from .records import ClaimedJob, QueueSelector

r = s.ready_executions


class ReadyStore(StoreBase):
    def ready_claim(
        self, process_id: int | None, queues: QueueSelector, limit: int
    ) -> list[ClaimedJob]:
        """Claim up to ``limit`` ready jobs for ``process_id`` in one short transaction.

        Queues are taken in the order given, each in priority order (larger first), then
        by id. Paused queues are skipped. With SKIP LOCKED, concurrent claimers pass over
        each other's rows instead of waiting; on a single-writer database the transaction
        holds the write lock from its start.
        """
        if limit <= 0:
            return []
        return self.run(lambda c: self._claim(c, process_id, queues, limit))

    def _claim(
        self, conn: Connection, process_id: int | None, queues: QueueSelector, limit: int
    ) -> list[ClaimedJob]:
        paused = set(conn.execute(select(s.pauses.c.queue_name)).scalars())
        ids: list[int] = []
        for pattern in queues.patterns:
            remaining = limit - len(ids)
            if remaining <= 0:
                break
            where = _queue_condition(pattern, paused)
            if where is None:
                continue
            stmt = self._claim_select(where, remaining, exclude=ids)
            ids.extend(int(i) for i in conn.execute(stmt).scalars())
        if not ids:
            return []
        now = utcnow()
        conn.execute(
            insert(s.claimed_executions),
            [{"job_id": i, "process_id": process_id, "created_at": now} for i in ids],
        )
        conn.execute(delete(r).where(r.c.job_id.in_(ids)))
        return _load_claimed(conn, ids, now)

    def _claim_select(
        self, where: ColumnElement[bool], limit: int, exclude: Sequence[int]
    ) -> Select[Any]:
        stmt = (
            select(r.c.job_id).where(where).order_by(r.c.priority.desc(), r.c.job_id).limit(limit)
        )
        if exclude:  # a row already taken by an earlier, overlapping pattern
            stmt = stmt.where(r.c.job_id.not_in(list(exclude)))
        if self.caps.skip_locked:
            stmt = stmt.with_for_update(skip_locked=True)
        return stmt

    def ready_count(self, queue_name: str | None = None) -> int:
        stmt = select(func.count()).select_from(r)
        if queue_name is not None:
            stmt = stmt.where(r.c.queue_name == queue_name)
        return int(self.run(lambda c: c.execute(stmt).scalar_one()))


def _queue_condition(pattern: str, paused: set[str]) -> ColumnElement[bool] | None:
    """The WHERE clause for one queue pattern; None when the queue is paused."""
    not_paused = r.c.queue_name.not_in(sorted(paused)) if paused else None
    if pattern == "*":
        return not_paused if not_paused is not None else true()
    if pattern.endswith("*"):
        cond = r.c.queue_name.startswith(pattern[:-1], autoescape=True)
        return cond if not_paused is None else cond & not_paused
    if pattern in paused:
        return None
    return r.c.queue_name == pattern


def _load_claimed(conn: Connection, ids: list[int], claimed_at: datetime) -> list[ClaimedJob]:
    j = s.jobs
    rows = conn.execute(
        select(
            j.c.id,
            j.c.task_name,
            j.c.queue_name,
            j.c.priority,
            j.c.args,
            j.c.kwargs,
            j.c.context,
            j.c.attempts,
            j.c.enqueued_at,
        ).where(j.c.id.in_(ids))
    ).all()
    by_id = {int(row.id): row for row in rows}
    out = []
    for i in ids:  # keep claim order: queue order, then priority
        row = by_id[i]
        out.append(
            ClaimedJob(
                id=i,
                task_name=row.task_name,
                queue_name=row.queue_name,
                priority=int(row.priority),
                args=row.args,
                kwargs=row.kwargs,
                context=row.context,
                attempts=int(row.attempts),
                enqueued_at=row.enqueued_at,
                claimed_at=claimed_at,
            )
        )
    return out
