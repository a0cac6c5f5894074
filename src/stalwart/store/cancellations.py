"""SQL of `stalwart_cancellations`: running jobs asked to stop.

A cancel of a RUNNING job cannot take it out of line: it leaves a row here, which the
worker holding the job sees at its next look (twice a second while it runs jobs) and
acts on. The row goes when the job leaves claimed, or when upkeep finds it stale.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.exc import IntegrityError

from . import schema as s
from .base import StoreBase, utcnow
from .history import add_history

x = s.cancellations


def request_cancel(conn: Connection, job_id: int) -> bool:
    """Ask the worker holding ``job_id`` to stop it; False if the job is not claimed."""
    claimed = s.claimed_executions
    held = conn.execute(select(claimed.c.job_id).where(claimed.c.job_id == job_id)).first()
    if held is None:
        return False
    try:
        with conn.begin_nested():  # asked twice: the first request stands
            conn.execute(insert(x).values(job_id=job_id, created_at=utcnow()))
    except IntegrityError:
        return True
    add_history(conn, [job_id], "cancel", "cancel asked while it ran")
    return True


class CancellationsStore(StoreBase):
    def cancellations_among(self, job_ids: Sequence[int]) -> set[int]:
        """Which of these jobs (a worker's, running or waiting in it) were asked to stop."""
        if not job_ids:
            return set()
        q = select(x.c.job_id).where(x.c.job_id.in_(list(job_ids)))
        return self.read(lambda conn: {int(i) for i in conn.execute(q).scalars()})

    def cancellations_prune(self) -> int:
        """Forget requests of jobs no longer claimed (they finished meanwhile)."""
        claimed = select(s.claimed_executions.c.job_id)
        gone = delete(x).where(x.c.job_id.not_in(claimed))
        return self.run(lambda conn: int(conn.execute(gone).rowcount or 0))
