"""Tasks, their options, and job results — the API users write against.

Names follow Django's `django.tasks`: `@task`, `enqueue`, `using(run_after=...)`,
`priority` from -100 to 100 (larger runs first), `queue_name`, result statuses.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from .context import JobInfo, run_async_inline, run_sync
from .names import check_priority, check_queue_name
from .serialization import loads

if TYPE_CHECKING:
    from .context import Hooks
    from .store import JobRow

P = ParamSpec("P")
R = TypeVar("R")

DEFAULT_QUEUE = "default"


class TaskApp(Protocol):
    """What a task and a job result need of the App that made them (`stalwart.App`)."""

    hooks: Hooks

    def enqueue(
        self,
        task: Task[Any, Any],
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
    ) -> JobResult: ...

    def get_result(self, job_id: int) -> JobResult: ...


class JobStatus(enum.StrEnum):
    SCHEDULED = "SCHEDULED"
    READY = "READY"
    BLOCKED = "BLOCKED"
    RUNNING = "RUNNING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Retry:
    """How often a failing task is tried, and how long to wait between attempts.

    ``attempts`` counts every run, the first included. The delay before attempt n+1,
    in seconds, after n failed attempts:

    - ``"exponential"``: ``base * 2 ** (n - 1)``
    - ``"linear"``: ``base * n``
    - ``"constant"``: ``base``
    - a callable: ``backoff(n)``

    capped at ``max_delay``; with ``jitter`` the delay is multiplied by a random factor
    in [0.5, 1.0] so a burst of failures does not retry as a burst. Only exceptions that
    are instances of ``on`` are retried; others fail the job at once.
    """

    attempts: int = 1
    backoff: str | Callable[[int], float] = "exponential"
    base: float = 1.0
    max_delay: float = 3600.0
    jitter: bool = True
    on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"Retry attempts must be an integer >= 1, got {self.attempts!r}")
        if isinstance(self.backoff, str) and self.backoff not in (
            "exponential",
            "linear",
            "constant",
        ):
            raise ValueError(
                f"Retry backoff {self.backoff!r} is not one of exponential, linear, "
                "constant or a callable"
            )
        if self.base < 0 or self.max_delay < 0:
            raise ValueError("Retry base and max_delay must be >= 0")

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``failed_attempts`` failures (the formula above)."""
        n = failed_attempts
        if callable(self.backoff):
            raw = float(self.backoff(n))
        elif self.backoff == "exponential":
            raw = self.base * 2 ** (n - 1)
        elif self.backoff == "linear":
            raw = self.base * n
        else:
            raw = self.base
        capped = min(max(raw, 0.0), self.max_delay)
        if self.jitter:
            capped *= (rng or random).uniform(0.5, 1.0)
        return capped

    def should_retry(self, failed_attempts: int, exc: BaseException) -> bool:
        return failed_attempts < self.attempts and isinstance(exc, self.on)


NO_RETRY = Retry()


@dataclass(frozen=True)
class Limit:
    """A concurrency limit: at most ``to`` jobs with the same key run at once.

    ``key`` is called with the job's arguments (``key(*args, **kwargs)``) and returns
    the part of the key that varies (an account id, say); jobs of tasks that share a
    ``group`` share the limit (default: the task's own name). A job over the limit is
    blocked — never lost — and runs when a slot frees, in priority then FIFO order; with
    ``on_conflict="discard"`` it fails at once with a ``Discarded`` error instead.
    ``duration`` bounds how long a slot is held without being given back: if the holder
    dies, the slot frees itself after it.
    """

    to: int = 1
    key: Callable[..., object] | None = None
    duration: timedelta = timedelta(minutes=3)
    group: str | None = None
    on_conflict: str = "block"

    def __post_init__(self) -> None:
        if not isinstance(self.to, int) or self.to < 1:
            raise ValueError(f"Limit to must be an integer >= 1, got {self.to!r}")
        if self.on_conflict not in ("block", "discard"):
            raise ValueError(
                f"Limit on_conflict must be 'block' or 'discard', got {self.on_conflict!r}"
            )
        if self.duration.total_seconds() <= 0:
            raise ValueError("Limit duration must be positive")

    def semaphore(
        self, task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        part = "" if self.key is None else str(self.key(*args, **kwargs))
        return {
            "key": f"{self.group or task_name}/{part}"[:255],
            "to": self.to,
            "duration": self.duration.total_seconds(),
            "on_conflict": self.on_conflict,
        }


@dataclass(frozen=True)
class TaskOptions:
    name: str
    queue_name: str = DEFAULT_QUEUE
    priority: int = 0
    retry: Retry = NO_RETRY
    discard_on: tuple[type[BaseException], ...] = ()
    on_crash: str = "retry"
    max_crashes: int = 3
    run_after: datetime | None = None
    concurrency: tuple[Limit, ...] = ()
    unique_key: str | None = None
    on_conflict: str = "raise"


class Task(Generic[P, R]):
    """A function registered with an App, to be run by workers.

    ``task.enqueue(...)`` stores a job and returns its `JobResult`; ``task.call(...)``
    runs the function here and now, in a fresh context like a worker would.
    """

    def __init__(self, app: TaskApp, func: Callable[P, R], options: TaskOptions) -> None:
        self.app = app
        self.func = func
        self.options = options
        self.is_async = inspect.iscoroutinefunction(func)
        self.__doc__ = func.__doc__
        self.__wrapped__ = func

    @property
    def name(self) -> str:
        return self.options.name

    @property
    def queue_name(self) -> str:
        return self.options.queue_name

    @property
    def priority(self) -> int:
        return self.options.priority

    def __repr__(self) -> str:
        return f"<Task {self.name} queue={self.queue_name!r} priority={self.priority}>"

    def using(
        self,
        *,
        run_after: timedelta | datetime | None = None,
        priority: int | None = None,
        queue_name: str | None = None,
        unique_key: str | None = None,
        on_conflict: str | None = None,
    ) -> Task[P, R]:
        r"""A copy of this task with other enqueue options.

        ``unique_key``: while a job with this key is not finished, enqueueing another
        ``"raise"``\s `UniqueJobExists` (default), ``"ignore"``\s it (returning the
        existing job), or ``"replace"``\s the waiting one (a running one is kept).
        """
        changes: dict[str, Any] = {}
        if unique_key is not None:
            if not isinstance(unique_key, str) or not 0 < len(unique_key) <= 255:
                raise ValueError("unique_key must be a string of 1 to 255 characters")
            changes["unique_key"] = unique_key
        if on_conflict is not None:
            if on_conflict not in ("ignore", "replace", "raise"):
                raise ValueError(
                    f"on_conflict must be 'ignore', 'replace' or 'raise', got {on_conflict!r}"
                )
            changes["on_conflict"] = on_conflict
        if run_after is not None:
            changes["run_after"] = to_run_at(run_after)
        if priority is not None:
            changes["priority"] = check_priority(priority)
        if queue_name is not None:
            changes["queue_name"] = check_queue_name(queue_name)
        return Task(self.app, self.func, replace(self.options, **changes))

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobResult:
        return self.app.enqueue(self, args=args, kwargs=kwargs)

    async def aenqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobResult:
        # The store's drivers are synchronous: keep the event loop free meanwhile.
        return await asyncio.to_thread(self.app.enqueue, self, args=args, kwargs=kwargs)

    def call(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run now, in this thread, in a fresh context (an ``async def`` task is run
        to completion on a new event loop; from async code use ``acall``)."""
        job = self._inline_job()
        if self.is_async:
            coro_fn: Any = self.func
            value: R = asyncio.run(
                run_async_inline(coro_fn, list(args), dict(kwargs), job, None, self.app.hooks)
            )
            return value
        result: R = run_sync(self.func, list(args), dict(kwargs), job, None, self.app.hooks)
        return result

    async def acall(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        job = self._inline_job()
        if self.is_async:
            coro_fn: Any = self.func
            return await run_async_inline(
                coro_fn, list(args), dict(kwargs), job, None, self.app.hooks
            )
        return await asyncio.to_thread(
            run_sync, self.func, list(args), dict(kwargs), job, None, self.app.hooks
        )

    def _inline_job(self) -> JobInfo:
        return JobInfo(
            id=None,
            task_name=self.name,
            attempt=1,
            queue_name=self.queue_name,
            enqueued_at=None,
        )


def to_run_at(run_after: timedelta | datetime) -> datetime:
    """An absolute, naive-UTC time from a delay or a time (naive times are UTC)."""
    if isinstance(run_after, timedelta):
        return datetime.now(UTC).replace(tzinfo=None) + run_after
    if isinstance(run_after, datetime):
        if run_after.tzinfo is not None:
            return run_after.astimezone(UTC).replace(tzinfo=None)
        return run_after
    raise TypeError(f"run_after must be a timedelta or a datetime, got {type(run_after).__name__}")


def aware(dt: datetime | None) -> datetime | None:
    return None if dt is None else dt.replace(tzinfo=UTC)


@dataclass
class JobError:
    """One failed attempt: the exception's class, message and traceback."""

    exception_class: str
    message: str
    traceback: str
    at: datetime | None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobError:
        at = d.get("at")
        return cls(
            exception_class=str(d.get("class", "")),
            message=str(d.get("message", "")),
            traceback=str(d.get("traceback", "")),
            at=datetime.fromisoformat(at) if isinstance(at, str) else None,
        )


@dataclass
class JobResult:
    """A job as stored: status, arguments, timing, errors and return value."""

    id: int
    status: JobStatus
    task_name: str
    args: list[Any]
    kwargs: dict[str, Any]
    queue_name: str
    priority: int
    enqueued_at: datetime | None
    scheduled_at: datetime | None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    crashes: int = 0
    errors: list[JobError] = field(default_factory=list)
    return_value: Any = None
    _app: TaskApp | None = field(default=None, repr=False, compare=False)

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.SUCCESSFUL, JobStatus.FAILED)

    def refresh(self) -> None:
        """Reload from the database."""
        if self._app is None:
            raise RuntimeError("this JobResult is not bound to an App")
        fresh = self._app.get_result(self.id)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    @classmethod
    def from_row(cls, row: JobRow, app: TaskApp | None = None) -> JobResult:
        errors = [JobError.from_dict(e) for e in (loads(row.errors) or [])]
        return cls(
            id=row.id,
            status=JobStatus(row.status),
            task_name=row.task_name,
            args=loads(row.args),
            kwargs=loads(row.kwargs),
            queue_name=row.queue_name,
            priority=row.priority,
            enqueued_at=aware(row.enqueued_at),
            scheduled_at=aware(row.scheduled_at),
            started_at=aware(row.started_at),
            finished_at=aware(row.finished_at),
            attempts=row.attempts,
            crashes=row.crashes,
            errors=errors,
            return_value=loads(row.result) if row.finished_at else None,
            _app=app,
        )
