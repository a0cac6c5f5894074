"""Counts of pending work for the engine, vacuum and reset.

The front ends' reads are in `store.reads`."""

from __future__ import annotations

from functools import partial

from sqlalchemy import Connection, Table, case, delete, exists, func, or_, select, text

from . import schema as s
from .base import StoreBase, utcnow
from .migrations import QUEUE_TABLES
from .statuses import EXECUTIONS

# Status name -> execution table whose rows are the jobs in that status (the tables of
# `statuses.EXECUTIONS`).
_EXECUTION_TABLES: dict[str, Table] = {status: e.table for status, e in EXECUTIONS.items()}


class StatsStore(StoreBase):
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

    def jobs_any_runnable(self) -> bool:
        """Whether any job is ready or running now (scheduled and blocked ones aside)."""
        probes = [exists(select(_EXECUTION_TABLES[st].c.job_id)) for st in ("READY", "RUNNING")]
        q = select(case((or_(*probes), 1), else_=0))
        return self.run(lambda conn: bool(conn.execute(q).scalar_one()))

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
        """VACUUM the execution tables that hold more than ``min_dead`` dead rows (and the
        jobs table past that and a fifth of its live rows); return
        their names. Where the database has per-table vacuum settings (PostgreSQL), so
        that a server with autovacuum off or lagging still keeps the claim's index scan
        short. Rows a long transaction elsewhere can still see are left for later."""
        if not self.caps.autovacuum:
            return []
        # The jobs table gets one dead row per finished job; it is vacuumed once they
        # pass a fifth of its live rows too, so a big history is not scanned each time.
        q = text(
            "SELECT relname FROM pg_stat_user_tables WHERE (relname = ANY(:names)"
            " AND n_dead_tup > :n) OR (relname = :jobs"
            " AND n_dead_tup > GREATEST(:n, n_live_tup / 5))"
        )
        params = {"names": list(QUEUE_TABLES), "n": min_dead, "jobs": s.jobs.name}
        tables = self.run(lambda conn: [str(r) for r in conn.execute(q, params).scalars()])
        for table in tables:
            # VACUUM cannot run in a transaction; it does not block inserts or deletes.
            self.run_statement(partial(_vacuum, table=table))
        return tables

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


def _vacuum(conn: Connection, *, table: str) -> None:
    conn.execute(text(f"VACUUM {table}"))
