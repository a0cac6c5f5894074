"""SQL of `stalwart_suspect_executions`: jobs that must run alone.

A job that was running beside others when its process died, or that was blamed for a
crash and has crashes left, waits here. Only isolation workers (one process, one thread,
one job at a time, started by the supervisor) claim from here, so a crash of that
process is the job's own.
"""

from __future__ import annotations

from sqlalchemy import Connection, exists, or_, select

from . import schema as s
from .base import StoreBase
from .ready import claim_rows, claimed_job, queue_condition
from .records import ClaimedJob, QueueSelector

sx = s.suspect_executions


class SuspectsStore(StoreBase):
    def suspect_claim(self, process_id: int | None, queues: QueueSelector) -> ClaimedJob | None:
        """Claim the first suspect of these queues, in priority then FIFO order."""

        def body(conn: Connection) -> ClaimedJob | None:
            now, skip_locked = self.clock.now(), self.caps.skip_locked
            for pattern in queues.patterns:
                rows = claim_rows(conn, sx, pattern, [], 1, process_id, now, skip_locked)
                if rows:
                    return claimed_job(rows[0], now)
            return None

        return self.run(body)

    def suspects_any(self, queues: QueueSelector) -> bool:
        """Whether any suspect of these queues waits to run alone."""
        conditions = [queue_condition(p, sx) for p in queues.patterns]
        q = select(exists(select(sx.c.job_id).where(or_(*conditions))))
        return bool(self.read(lambda conn: conn.execute(q).scalar()))
