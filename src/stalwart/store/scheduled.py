"""SQL of `stalwart_scheduled_executions`: moving due jobs to ready."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Connection, delete, insert, literal, select

from . import schema as s
from .base import StoreBase
from .flow import Placer, settle
from .semaphores import Waiting, make_ready

sch = s.scheduled_executions


class ScheduledStore(StoreBase):
    def scheduled_dispatch_due(self, batch_size: int, now: datetime | None = None) -> int:
        """Move up to ``batch_size`` due scheduled jobs to ready; return how many moved."""
        at = now or self.clock.now()
        return self.run(lambda conn: self._dispatch(conn, at, batch_size))

    def _dispatch(self, conn: Connection, now: datetime, batch_size: int) -> int:
        q = (
            select(sch.c.job_id)
            .where(sch.c.scheduled_at <= now)
            .order_by(sch.c.scheduled_at, sch.c.priority.desc(), sch.c.job_id)
            .limit(batch_size)
        )
        ids = [int(i) for i in conn.execute(q.with_for_update(skip_locked=True)).scalars()]
        if not ids:
            return 0
        limited = conn.execute(
            select(sch.c.job_id, sch.c.queue_name, sch.c.priority, s.jobs.c.concurrency_limits)
            .select_from(sch.join(s.jobs, s.jobs.c.id == sch.c.job_id))
            .where(sch.c.job_id.in_(ids), s.jobs.c.concurrency_limits.is_not(None))
        ).all()
        plain = sorted(set(ids) - {int(r.job_id) for r in limited})
        if plain:  # the common case: one INSERT ... SELECT, no row through Python
            conn.execute(
                insert(s.ready_executions).from_select(
                    ["job_id", "queue_name", "priority", "created_at"],
                    select(
                        sch.c.job_id, sch.c.queue_name, sch.c.priority, literal(now, s.Timestamp)
                    ).where(sch.c.job_id.in_(plain)),
                )
            )
        if limited:
            discarded = make_ready(
                conn,
                [
                    Waiting(int(r.job_id), r.queue_name, int(r.priority), r.concurrency_limits)
                    for r in limited
                ],
                now,
            )
            if discarded:
                settle(cast(Placer, self), conn, [(i, False) for i in discarded], now)
        conn.execute(delete(sch).where(sch.c.job_id.in_(ids)))
        self.notify_ready(
            conn,
            conn.execute(
                select(s.ready_executions.c.queue_name)
                .where(s.ready_executions.c.job_id.in_(ids))
                .distinct()
            ).scalars(),
        )
        return len(ids)
