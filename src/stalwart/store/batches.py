"""Verbs of workflows (`flow.py` holds their SQL): batches made and closed, read back;
what a running job asks (its dependencies' results, its progress); the dispatcher's
recheck of waiting jobs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, func, select, update

from ..errors import BatchNotFound
from ..names import is_job_id
from . import flow
from . import schema as s
from .base import StoreBase
from .jobs import job_rows
from .records import JobRow

b, d, j = s.batches, s.job_dependencies, s.jobs


@dataclass(frozen=True, slots=True)
class BatchRow:
    id: int
    description: str | None
    total: int
    pending: int
    succeeded: int
    failed: int
    callbacks: str | None  # JSON list of {"on", "job", "job_id"}
    created_at: datetime
    closed_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class Link:
    """A job on the other end of a dependency, with its status."""

    job_id: int
    task_name: str
    status: str


class BatchesStore(StoreBase):
    def batch_create(
        self,
        description: str | None,
        callbacks: list[dict[str, Any]],
        conn: Connection | None = None,
    ) -> int:
        """A new, open batch; its id. With ``conn``, in the caller's transaction."""
        return self.using(
            conn, lambda c: flow.create_batch(c, description, callbacks, self.clock.now())
        )

    def batch_close(self, batch_id: int, conn: Connection | None = None) -> None:
        """No more jobs but its own jobs' fan-out: finished (callbacks enqueued) at once
        if nothing is pending."""
        placer = cast(flow.Placer, self)
        self.using(conn, lambda c: flow.close_batch(placer, c, batch_id, self.clock.now()))

    def batch_get(self, batch_id: int) -> BatchRow:
        rows = self.run(lambda c: _batches(c, select(b).where(b.c.id == batch_id)))
        if not is_job_id(batch_id) or not rows:
            raise BatchNotFound(f"no batch with id {batch_id}")
        return rows[0]

    def batches_list(self, limit: int = 50, offset: int = 0) -> list[BatchRow]:
        """The newest batches first."""
        q = select(b).order_by(b.c.id.desc()).limit(limit).offset(offset)
        return self.run(lambda c: _batches(c, q))

    def batches_count(self) -> int:
        return int(self.run(lambda c: c.execute(select(func.count()).select_from(b)).scalar_one()))

    def batch_jobs(self, batch_id: int, limit: int = 100) -> list[JobRow]:
        """The first ``limit`` jobs of a batch (by id), with their statuses."""
        q = (
            select(j.c.id)
            .where(j.c.batch_id == batch_id)
            .order_by(j.c.batch_id, j.c.id)
            .limit(limit)
        )
        return self.run(lambda c: job_rows(c, [int(i) for i in c.execute(q).scalars()]))

    def job_dependency_results(self, job_id: int) -> dict[int, Any]:
        """The return value (JSON text, None if none or not ended) of each job
        ``job_id`` depends on."""
        q = (
            select(d.c.depends_on, j.c.result)
            .select_from(d.join(j, j.c.id == d.c.depends_on, isouter=True))
            .where(d.c.job_id == job_id)
        )
        return self.run(lambda c: {int(r[0]): r[1] for r in c.execute(q).all()})

    def job_links(self, job_id: int) -> tuple[list[Link], list[Link]]:
        """The jobs ``job_id`` depends on, and the jobs that depend on it."""

        def body(conn: Connection) -> tuple[list[Link], list[Link]]:
            ups = conn.execute(select(d.c.depends_on).where(d.c.job_id == job_id)).scalars()
            downs = conn.execute(select(d.c.job_id).where(d.c.depends_on == job_id)).scalars()
            out = []
            for ids in (list(ups), list(downs)):
                rows = job_rows(conn, [int(i) for i in ids][:200])
                out.append([Link(r.id, r.task_name, r.status) for r in rows])
            return out[0], out[1]

        return self.run(body) if is_job_id(job_id) else ([], [])

    def job_progress_set(self, job_id: int, progress: str) -> None:
        """Store a running job's progress (JSON text)."""
        q = update(j).where(j.c.id == job_id).values(progress=progress)
        self.run_statement(lambda c: c.execute(q))

    def waiting_recheck(self, batch_size: int = 100) -> int:
        """Let go (or fail) waiting jobs whose dependency was running when they were
        enqueued and has ended since; how many."""
        placer = cast(flow.Placer, self)
        return self.run(lambda c: flow.recheck_waiting(placer, c, batch_size, self.clock.now()))


def _batches(conn: Connection, q: Any) -> list[BatchRow]:
    return [
        BatchRow(
            id=int(r.id),
            description=r.description,
            total=int(r.total),
            pending=int(r.pending),
            succeeded=int(r.succeeded),
            failed=int(r.failed),
            callbacks=r.callbacks,
            created_at=r.created_at,
            closed_at=r.closed_at,
            finished_at=r.finished_at,
        )
        for r in conn.execute(q).all()
    ]
