"""Workflows: batches with callbacks, chains, and what a running job asks of its batch,
its dependencies and its progress. The App gets these methods from `Workflows`; the
bookkeeping is the store's (`store/flow.py`).

A batch is open while its ``with`` block runs: every job enqueued in the block joins
it (sync or async code, ``enqueue_many`` too; through the block's connection when it was
given one). It finishes once the block is over and every job of it has ended; that
end enqueues its callbacks, exactly once, in the transaction of the last job's end.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, Protocol, cast

from sqlalchemy import Connection

from .context import JobInfo
from .enqueued import EnqueuedJobs, ResultMaker
from .results import JobResult, aware
from .serialization import check_json, loads
from .store import NewJob, Store, utcnow
from .store.batches import BatchRow
from .tasks import PreparedJob, Task

# The batch whose ``with`` block (or ``batch.enqueue``) is running in this context.
_current: contextvars.ContextVar[Batch | None] = contextvars.ContextVar(
    "stalwart.batch", default=None
)


def current_batch() -> Batch | None:
    return _current.get()


class AppLike(ResultMaker, Protocol):
    """What workflows need of the App (`stalwart.App`)."""

    @property
    def store(self) -> Store: ...

    def enqueue(
        self,
        task: Task[Any, Any] | str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        connection: Connection | None = None,
    ) -> JobResult: ...

    def new_job(
        self, task: Task[Any, Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> NewJob: ...


CALLBACK_FIELDS = (
    "task_name",
    "queue_name",
    "priority",
    "args",
    "kwargs",
    "context",
    "concurrency_limits",
    "timeout",
    "rate_limits",
)


class Batch:
    """A batch being filled (``with app.batch(...) as batch``), or one a running job of
    it adds to (``current_job().batch``). ``id`` is its id."""

    def __init__(
        self,
        app: AppLike,
        *,
        batch_id: int | None = None,
        description: str | None = None,
        callbacks: list[dict[str, Any]] | None = None,
        connection: Connection | None = None,
    ) -> None:
        self._app, self._id, self.description = app, batch_id, description
        self._callbacks, self.connection = callbacks or [], connection
        self._token: contextvars.Token[Batch | None] | None = None

    @property
    def id(self) -> int:
        if self._id is None:
            raise RuntimeError("the batch is made when its `with` block starts")
        return self._id

    def __repr__(self) -> str:
        return f"<Batch {self._id}>"

    # ---- the block ----

    def __enter__(self) -> Batch:
        self._open()
        self._token = _current.set(self)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()
        self._app.store.batch_close(self.id, conn=self.connection)

    async def __aenter__(self) -> Batch:
        await asyncio.to_thread(self._open)
        self._token = _current.set(self)
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._leave()
        await asyncio.to_thread(self._app.store.batch_close, self.id, self.connection)

    def _open(self) -> None:
        if self._id is not None:
            raise RuntimeError(f"batch {self._id} was opened already")
        store = self._app.store
        self._id = store.batch_create(self.description, self._callbacks, conn=self.connection)

    def _leave(self) -> None:
        if self._token is not None:
            _current.reset(self._token)
            self._token = None

    # ---- adding jobs ----

    @contextmanager
    def joined(self) -> Iterator[Batch]:
        """Jobs enqueued in this block join the batch (fan-out from a job of it)."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def enqueue(
        self, task: Task[Any, Any] | PreparedJob, /, *args: Any, **kwargs: Any
    ) -> JobResult:
        """Enqueue a job into this batch: ``batch.enqueue(task, *args, **kwargs)`` or
        ``batch.enqueue(task.prepare(...))``."""
        with self.joined():
            if isinstance(task, PreparedJob):
                return self._app.enqueue(task.task, task.args, task.kwargs)
            return self._app.enqueue(task, args, kwargs)

    def enqueue_many(self, jobs: Sequence[PreparedJob]) -> Sequence[JobResult]:
        with self.joined():
            return enqueue_prepared(self._app, jobs)


class BatchStatus(enum.StrEnum):
    OPEN = "OPEN"  # its `with` block is still running
    RUNNING = "RUNNING"  # jobs of it have not ended
    SUCCEEDED = "SUCCEEDED"  # every job succeeded
    FAILED = "FAILED"  # every job ended, at least one failed (or was cancelled)


@dataclass
class BatchCallback:
    on: str  # "success", "finish" or "failure"
    task_name: str
    job_id: int | None  # the callback's job, once enqueued


@dataclass
class BatchResult:
    """A batch as stored: ``app.get_batch(id)``."""

    id: int
    description: str | None
    total: int
    pending: int
    succeeded: int
    failed: int
    status: BatchStatus
    created_at: datetime | None
    finished_at: datetime | None
    callbacks: list[BatchCallback] = field(default_factory=list)

    @classmethod
    def from_row(cls, row: BatchRow) -> BatchResult:
        if row.closed_at is None:
            status = BatchStatus.OPEN
        elif row.pending > 0:
            status = BatchStatus.RUNNING
        else:
            status = BatchStatus.FAILED if row.failed else BatchStatus.SUCCEEDED
        return cls(
            id=row.id,
            description=row.description,
            total=row.total,
            pending=row.pending,
            succeeded=row.succeeded,
            failed=row.failed,
            status=status,
            created_at=aware(row.created_at),
            finished_at=aware(row.finished_at),
            callbacks=[
                BatchCallback(c["on"], c["job"]["task_name"], c.get("job_id"))
                for c in json.loads(row.callbacks or "[]")
            ],
        )

    @property
    def is_finished(self) -> bool:
        return self.finished_at is not None


def enqueue_prepared(
    app: AppLike, jobs: Sequence[PreparedJob], connection: Connection | None = None
) -> EnqueuedJobs:
    """Prepared jobs of any tasks, in one transaction; their results in order."""
    for i, p in enumerate(jobs):
        if not isinstance(p, PreparedJob):
            raise TypeError(f"jobs[{i}] is not a prepared job (task.prepare(...)): {p!r}")
    new = [app.new_job(p.task, p.args, p.kwargs) for p in jobs]
    now = utcnow()
    ids = app.store.jobs_enqueue(new, conn=connection or batch_connection(), now=now)
    return EnqueuedJobs(app, ids, new, [(p.args, p.kwargs) for p in jobs], now)


def batch_connection() -> Connection | None:
    batch = _current.get()
    return None if batch is None else batch.connection


class Workflows:
    """The App's workflow methods (`stalwart.App` inherits them)."""

    def _as_app(self) -> AppLike:
        return cast(AppLike, self)

    def batch(
        self,
        *,
        on_success: PreparedJob | None = None,
        on_finish: PreparedJob | None = None,
        on_failure: PreparedJob | None = None,
        description: str | None = None,
        connection: Connection | None = None,
    ) -> Batch:
        """A batch to fill in a ``with`` (or ``async with``) block. Callbacks are
        prepared jobs (``task.prepare(...)``), enqueued once the batch is done with
        ``batch_id=`` added to their keyword arguments: ``on_finish`` whatever the
        outcome, ``on_success`` if every job succeeded, ``on_failure`` if any failed.
        With ``connection``, the batch and its jobs are written in that transaction."""
        app = self._as_app()
        callbacks = []
        for on, p in (("success", on_success), ("finish", on_finish), ("failure", on_failure)):
            if p is None:
                continue
            if not isinstance(p, PreparedJob):
                raise TypeError(f"on_{on} takes a prepared job (task.prepare(...)), got {p!r}")
            if "batch_id" in p.kwargs:
                raise ValueError(f"on_{on}: batch_id= is passed to a callback by the batch")
            job = app.new_job(p.task, p.args, p.kwargs)
            spec = {f: getattr(job, f) for f in CALLBACK_FIELDS}
            callbacks.append({"on": on, "job": spec, "job_id": None})
        if description is not None and (not isinstance(description, str) or len(description) > 255):
            raise ValueError("description must be a string of at most 255 characters")
        return Batch(app, description=description, callbacks=callbacks, connection=connection)

    def get_batch(self, batch_id: int) -> BatchResult:
        """The batch as stored now; raises BatchNotFound for an unknown id."""
        return BatchResult.from_row(self._as_app().store.batch_get(batch_id))

    def batches(self, limit: int = 50, offset: int = 0) -> list[BatchResult]:
        """The newest batches first."""
        return [BatchResult.from_row(r) for r in self._as_app().store.batches_list(limit, offset)]

    def chain(self, *steps: PreparedJob, connection: Connection | None = None) -> list[JobResult]:
        """Enqueue steps that run one after the other, in one transaction: each step
        waits for the one before and gets its return value as ``previous=``. If a step
        fails for good, the rest fail with DependencyFailed."""
        app = self._as_app()
        if not steps:
            raise ValueError("chain() needs at least one step")
        for i, p in enumerate(steps):
            if not isinstance(p, PreparedJob):
                raise TypeError(f"chain step {i} is not a prepared job (task.prepare(...))")
            if i and "previous" in p.kwargs:
                raise ValueError(f"chain step {i}: previous= is passed by the chain")
        jobs = [app.new_job(p.task, p.args, p.kwargs) for p in steps]
        store, now = app.store, utcnow()

        def body(conn: Connection) -> list[int]:
            ids: list[int] = []
            for job in jobs:
                if ids:
                    job.after, job.pass_as = (*job.after, ids[-1]), "previous"
                ids += store.jobs_enqueue([job], conn=conn, now=now)
            return ids

        conn = connection or batch_connection()
        if conn is not None:
            ids = body(conn)
        else:
            with store.transaction(store.engine) as own:
                ids = body(own)
        return [
            app._enqueued_result(i, j, p.args, p.kwargs, now)
            for i, j, p in zip(ids, jobs, steps, strict=True)
        ]

    def job_workflow(self, job: JobInfo) -> RunningJob:
        return RunningJob(self._as_app(), job)


# At most one progress write a second per job.
PROGRESS_EVERY = 1.0


class RunningJob:
    """What a running job asks of its batch, dependencies and progress
    (``current_job().batch``, ``.dependency_results``, ``.set_progress``)."""

    def __init__(self, app: AppLike, job: JobInfo) -> None:
        self.app, self.job = app, job
        self._written = 0.0
        self._unsaved: str | None = None

    def batch(self) -> Batch:
        return Batch(self.app, batch_id=self.job.batch_id)

    def dependency_results(self) -> dict[int, Any]:
        found = self.app.store.job_dependency_results(int(self.job.id or 0))
        return {k: loads(v) if v is not None else None for k, v in found.items()}

    def set_progress(self, done: float, total: float | None, message: str | None) -> None:
        for name, value in (("done", done), ("total", total)):
            if value is None and name == "total":
                continue
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise ValueError(f"set_progress: {name} must be a number >= 0, got {value!r}")
        if message is not None:
            check_json(message, "set_progress message")
            message = str(message)[:1000]
        at = utcnow().isoformat()
        self._unsaved = json.dumps({"done": done, "total": total, "message": message, "at": at})
        if time.monotonic() - self._written >= PROGRESS_EVERY:
            self.flush()

    def flush(self) -> None:
        if self._unsaved is None:
            return
        progress, self._unsaved = self._unsaved, None
        self._written = time.monotonic()
        self.app.store.job_progress_set(int(self.job.id or 0), progress)
