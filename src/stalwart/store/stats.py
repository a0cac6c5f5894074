"""Read-only counts for the CLI, the demo and the dashboard."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import Connection, Table, delete, func, select, text

from . import schema as s
from .base import StoreBase, utcnow

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

        With ``due_only``, scheduled jobs count only once their time has come.
        """

        def body(conn: Connection) -> int:
            total = 0
            for status in ("READY", "SCHEDULED", "RUNNING", "BLOCKED"):
                t = _EXECUTION_TABLES[status]
                q = select(func.count()).select_from(t)
                if due_only and status == "SCHEDULED":
                    q = q.where(t.c.scheduled_at <= utcnow())
                total += int(conn.execute(q).scalar_one())
            return total

        return self.run(body)

    def jobs_any_pending(self) -> bool:
        """Whether any job is ready, running, blocked or scheduled: cheap index probes."""

        def body(conn: Connection) -> bool:
            for status in ("READY", "RUNNING", "BLOCKED", "SCHEDULED"):
                t = _EXECUTION_TABLES[status]
                if conn.execute(select(t.c.job_id).limit(1)).first() is not None:
                    return True
            return False

        return self.run(body)

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
