"""Read-only counts for the CLI, the demo and the dashboard."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, Table, func, select

from . import schema as s
from .base import StoreBase
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
