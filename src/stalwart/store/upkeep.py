"""Whole-queue checks and upkeep: is anything left to do (draining), vacuum, reset."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, case, delete, exists, func, or_, select, text

from . import schema as s
from .base import StoreBase

# The execution tables of jobs that are not finished and not failed.
_WAITING_OR_RUNNING = (
    s.ready_executions,
    s.claimed_executions,
    s.blocked_executions,
    s.suspect_executions,
)


class UpkeepStore(StoreBase):
    def jobs_any_pending(self) -> bool:
        """Whether any job is ready, running, blocked or scheduled (whenever)."""
        return self.jobs_any_due(None)

    def jobs_any_due(self, within: timedelta | None = timedelta(0)) -> bool:
        """Whether any job is ready, running or blocked, or scheduled to be due within
        ``within`` from now (None: at any time): one statement of index probes (one
        snapshot, so a job moving between tables meanwhile is never missed)."""
        sch, th = s.scheduled_executions, s.throttled_executions
        probes = [exists(select(t.c.job_id)) for t in _WAITING_OR_RUNNING]
        scheduled, throttled = select(sch.c.job_id), select(th.c.job_id)
        if within is not None:
            soon = self.clock.now() + within
            scheduled = scheduled.where(sch.c.scheduled_at <= soon)
            throttled = throttled.where(th.c.due_at <= soon)
        probes += [exists(scheduled), exists(throttled)]
        q = select(case((or_(*probes), 1), else_=0))
        return self.read(lambda conn: bool(conn.execute(q).scalar_one()))

    def scheduled_summary(self) -> tuple[int, datetime | None]:
        """How many jobs are scheduled, and when the first of them is due."""
        sch = s.scheduled_executions
        q = select(func.count(), func.min(sch.c.scheduled_at))
        row = self.read(lambda conn: conn.execute(q).one())
        return int(row[0]), row[1]

    def jobs_pending_count(self, due_only: bool = False) -> int:
        """Jobs not yet finished nor failed: ready, scheduled, claimed or blocked.

        One statement, so one snapshot: a job moving between tables meanwhile is
        counted once, never zero times. With ``due_only``, scheduled jobs count only
        once their time has come.
        """
        sch = s.scheduled_executions
        counts = [
            select(func.count()).select_from(t).scalar_subquery()
            for t in (*_WAITING_OR_RUNNING, s.throttled_executions)
        ]
        scheduled = select(func.count()).select_from(sch)
        if due_only:
            scheduled = scheduled.where(sch.c.scheduled_at <= self.clock.now())
        total = select(sum(counts[1:], counts[0]) + scheduled.scalar_subquery())
        return self.read(lambda conn: int(conn.execute(total).scalar_one()))

    def queue_tables_vacuum(self, min_dead: int = 10_000) -> list[str]:
        """VACUUM the queue tables past ``min_dead`` dead rows, where the database has
        per-table vacuum (`postgres.py`); return their names. Generically none."""
        return []

    def tables_reset(self) -> None:
        """Delete every row of every Stalwart table (for test suites)."""

        def body(conn: Connection) -> None:
            for table in reversed(s.metadata.sorted_tables):
                # TRUNCATE leaves no dead rows behind for the next run to skip over.
                if self.caps.truncate:
                    conn.execute(text(f"TRUNCATE TABLE {table.name}"))
                else:
                    conn.execute(delete(table))

        self.run(body)
