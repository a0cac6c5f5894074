"""SQL of `stalwart_failed_executions`: retrying and discarding failed jobs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any, cast

from sqlalchemy import Connection, Select, delete, select

from ..names import is_job_id
from . import schema as s
from .base import StoreBase
from .flow import Placer, reopen_retried, settle
from .semaphores import Waiting, make_ready

f = s.failed_executions


@dataclass(frozen=True, slots=True)
class FailedFilter:
    """Which failed jobs an action applies to; every given field must match."""

    job_ids: Sequence[int] | None = None
    task_name: str | None = None
    queue_name: str | None = None
    error_class: str | None = None

    def select(self) -> Select[Any]:
        q = select(f.c.job_id)
        if self.job_ids is not None:
            q = q.where(f.c.job_id.in_([i for i in self.job_ids if is_job_id(i)]))
        if self.queue_name is not None:
            q = q.where(f.c.queue_name == self.queue_name)
        if self.error_class is not None:
            q = q.where(f.c.error_class == self.error_class)
        if self.task_name is not None:
            q = q.join(s.jobs, s.jobs.c.id == f.c.job_id).where(
                s.jobs.c.task_name == self.task_name
            )
        return q.order_by(f.c.job_id)


class FailedStore(StoreBase):
    # Failed jobs are acted on in batches of this size, each its own short transaction.
    failed_batch_size = 500

    def failed_retry(self, which: FailedFilter, rerun_batch_callbacks: bool = False) -> int:
        """Put matching failed jobs back in ready; their error history stays on the job.

        A job of a batch is pending in it again; a finished batch runs its callbacks
        again when it ends only with ``rerun_batch_callbacks``."""
        return self._each_batch(
            which, partial(self._retry_batch, rerun_callbacks=rerun_batch_callbacks)
        )

    def failed_discard(self, which: FailedFilter) -> int:
        """Delete matching failed jobs for good."""
        return self._each_batch(which, self._discard_batch)

    def _each_batch(
        self, which: FailedFilter, action: Callable[[Connection, list[int]], None]
    ) -> int:
        total = 0
        while True:
            q = which.select().limit(self.failed_batch_size)

            def body(conn: Connection, q: Select[Any] = q) -> int:
                ids = [int(i) for i in conn.execute(q).scalars()]
                if ids:
                    action(conn, ids)
                return len(ids)

            n = self.run(body)
            total += n
            if n < self.failed_batch_size:
                return total

    def _retry_batch(self, conn: Connection, ids: list[int], rerun_callbacks: bool = False) -> None:
        jobs = s.jobs
        rows = conn.execute(
            select(
                jobs.c.id,
                jobs.c.queue_name,
                jobs.c.priority,
                jobs.c.concurrency_limits,
                jobs.c.batch_id,
            ).where(jobs.c.id.in_(ids))
        ).all()
        conn.execute(delete(f).where(f.c.job_id.in_(ids)))
        in_batches = [int(r.batch_id) for r in rows if r.batch_id is not None]
        if in_batches:
            reopen_retried(conn, in_batches, rerun_callbacks)
        # Back through the concurrency limits: a failed job holds no slot.
        discarded = make_ready(
            conn,
            [Waiting(int(r.id), r.queue_name, int(r.priority), r.concurrency_limits) for r in rows],
            self.clock.now(),
        )
        if discarded:
            settle(cast(Placer, self), conn, [(i, False) for i in discarded], self.clock.now())

    @staticmethod
    def _discard_batch(conn: Connection, ids: list[int]) -> None:
        conn.execute(delete(f).where(f.c.job_id.in_(ids)))
        conn.execute(delete(s.jobs).where(s.jobs.c.id.in_(ids)))
