"""Read-only counts for the CLI, the demo and the dashboard."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, Table, case, delete, exists, func, or_, select, text

from . import schema as s
from .base import StoreBase, utcnow
from .jobs import job_rows
from .records import JobRow

# Status name -> execution table whose rows are the jobs in that status.
_EXECUTION_TABLES: dict[str, Table] = {
    "READY": s.ready_executions,
    "SCHEDULED": s.scheduled_executions,
    "RUNNING": s.claimed_executions,
    "BLOCKED": s.blocked_executions,
    "FAILED": s.failed_executions,
}


class StatsStore(StoreBase):
    def queues_counts(self) -> dict[str, dict[str, int]]:
        """{queue: {status: count}} for waiting, running and failed jobs.

        Execution tables are small (they hold only jobs not finished), so exact counts
        are cheap; finished jobs are counted apart (`jobs_finished_count`).
        """
        return self.run(self._queues_counts)

    def _queues_counts(self, conn: Connection) -> dict[str, dict[str, int]]:
        out: dict[str, dict[str, int]] = defaultdict(dict)
        for status, table in _EXECUTION_TABLES.items():
            if "queue_name" in table.c:
                q = select(table.c.queue_name, func.count()).group_by(table.c.queue_name)
            else:
                q = (
                    select(s.jobs.c.queue_name, func.count())
                    .select_from(table.join(s.jobs, s.jobs.c.id == table.c.job_id))
                    .group_by(s.jobs.c.queue_name)
                )
            for queue, n in conn.execute(q).all():
                out[queue][status] = int(n)
        return dict(out)

    def jobs_finished_count_by_queue(self) -> dict[str, int]:
        q = (
            select(s.jobs.c.queue_name, func.count())
            .where(s.jobs.c.finished_at.is_not(None))
            .group_by(s.jobs.c.queue_name)
        )
        return self.run(lambda conn: {str(k): int(v) for k, v in conn.execute(q).all()})

    def jobs_pending_count(self, due_only: bool = False) -> int:
        """Jobs not yet finished nor failed: ready, scheduled, claimed or blocked.

        One statement, so one snapshot: a job moving between tables meanwhile is
        counted once, never zero times. With ``due_only``, scheduled jobs count only
        once their time has come.
        """
        counts = []
        for status in ("READY", "SCHEDULED", "RUNNING", "BLOCKED"):
            t = _EXECUTION_TABLES[status]
            q = select(func.count()).select_from(t)
            if due_only and status == "SCHEDULED":
                q = q.where(t.c.scheduled_at <= utcnow())
            counts.append(q.scalar_subquery())
        total = select(counts[0] + counts[1] + counts[2] + counts[3])
        return self.run(lambda conn: int(conn.execute(total).scalar_one()))

    def jobs_by_status(
        self,
        status: str,
        *,
        queue_name: str | None = None,
        task_name: str | None = None,
        limit: int = 50,
        before_id: int | None = None,
    ) -> list[JobRow]:
        """Jobs in one status, newest first, ``limit`` at most (keyset: ``before_id``)."""
        j = s.jobs
        if status == "FINISHED":
            q = select(j.c.id).where(j.c.finished_at.is_not(None))
            id_col = j.c.id
        else:
            t = _EXECUTION_TABLES[status]
            q = select(t.c.job_id).select_from(t.join(j, j.c.id == t.c.job_id))
            id_col = t.c.job_id
        if queue_name is not None:
            q = q.where(j.c.queue_name == queue_name)
        if task_name is not None:
            q = q.where(j.c.task_name == task_name)
        if before_id is not None:
            q = q.where(id_col < before_id)
        q = q.order_by(id_col.desc()).limit(limit)

        def body(conn: Connection) -> list[JobRow]:
            ids = [int(i) for i in conn.execute(q).scalars()]
            return sorted(job_rows(conn, ids), key=lambda r: -r.id)

        return self.run(body)

    def claimed_with_process(self) -> list[tuple[int, int | None, int | None, str | None]]:
        """(job id, process id, pid, process name) of every claimed job."""
        c, pr = s.claimed_executions, s.processes
        q = (
            select(c.c.job_id, c.c.process_id, pr.c.pid, pr.c.name)
            .select_from(c.outerjoin(pr, pr.c.id == c.c.process_id))
            .order_by(c.c.job_id)
        )
        return self.run(lambda conn: [(int(r[0]), r[1], r[2], r[3]) for r in conn.execute(q).all()])

    def jobs_any_pending(self) -> bool:
        """Whether any job is ready, running, blocked or scheduled: one statement of
        index probes (one snapshot, as in `jobs_pending_count`)."""
        probes = [
            exists(select(_EXECUTION_TABLES[st].c.job_id))
            for st in ("READY", "RUNNING", "BLOCKED", "SCHEDULED")
        ]
        q = select(case((or_(*probes), 1), else_=0))
        return self.run(lambda conn: bool(conn.execute(q).scalar_one()))

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
