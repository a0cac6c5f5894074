"""Tasks and their options — the API users write against (results: `results.py`,
retry and limits: `policies.py`).

Names follow Django's `django.tasks`: `@task`, `enqueue`, `using(run_after=...)`,
`priority` from -100 to 100 (larger runs first), `queue_name`, result statuses.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, Protocol, TypeVar

from .context import JobInfo, run_async_inline, run_sync
from .names import check_priority, check_queue_name
from .policies import NO_RETRY, Limit, Rate, Retry
from .results import JobResult

if TYPE_CHECKING:
    from .context import Hooks

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

    def now(self) -> datetime:
        """The database's time (naive UTC)."""
        ...


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
    rate_limits: tuple[Rate, ...] = ()
    # Seconds an attempt may run before it fails with JobTimeout.
    timeout: float | None = None
    # A job not started within this long after its enqueue (or by this time) fails with
    # Expired instead of running late.
    expires: timedelta | datetime | None = None
    # Ids of the jobs this one waits for (WAITING until they all succeeded), and what a
    # failed one does to it: "fail" (DependencyFailed) or "run".
    after: tuple[int, ...] = ()
    on_dependency_failure: str = "fail"


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
        timeout: float | timedelta | None = None,
        expires: timedelta | datetime | None = None,
        after: Sequence[JobResult | int] | None = None,
        on_dependency_failure: str | None = None,
    ) -> Task[P, R]:
        r"""A copy of this task with other enqueue options.

        ``unique_key``: while a job with this key is not finished, enqueueing another
        ``"raise"``\s `UniqueJobExists` (default), ``"ignore"``\s it (returning the
        existing job), or ``"replace"``\s the waiting one (a running one is kept).
        ``timeout``: seconds (or a timedelta) an attempt may run. ``expires``: a delay
        after enqueue or a time; not started by then, the job fails with Expired.
        ``after``: jobs (results or ids) that must succeed before this one runs; if one
        fails for good, this one fails with DependencyFailed, or runs anyway with
        ``on_dependency_failure="run"``.
        """
        changes: dict[str, Any] = {}
        if after is not None:
            changes["after"] = dependency_ids(after)
        if on_dependency_failure is not None:
            if on_dependency_failure not in ("fail", "run"):
                raise ValueError(
                    f"on_dependency_failure must be 'fail' or 'run', got {on_dependency_failure!r}"
                )
            changes["on_dependency_failure"] = on_dependency_failure
        if timeout is not None:
            changes["timeout"] = check_timeout(timeout)
        if expires is not None:
            changes["expires"] = check_expires(expires)
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
            # A delay counts from the database's time: one clock for every host.
            now = self.app.now() if isinstance(run_after, timedelta) else None
            changes["run_after"] = to_run_at(run_after, now)
        if priority is not None:
            changes["priority"] = check_priority(priority)
        if queue_name is not None:
            changes["queue_name"] = check_queue_name(queue_name)
        return Task(self.app, self.func, replace(self.options, **changes))

    def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobResult:
        return self.app.enqueue(self, args=args, kwargs=kwargs)

    def prepare(self, *args: P.args, **kwargs: P.kwargs) -> PreparedJob:
        """A job of this task not enqueued yet: for batch callbacks, `App.chain` and
        ``enqueue_many``."""
        return PreparedJob(self, tuple(args), dict(kwargs))

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


@dataclass(frozen=True)
class PreparedJob:
    """A call of a task, described but not enqueued (``task.prepare(...)``)."""

    task: Task[Any, Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    def enqueue(self) -> JobResult:
        return self.task.app.enqueue(self.task, self.args, self.kwargs)


def dependency_ids(after: object) -> tuple[int, ...]:
    """The ids of ``after=``: job results or ids."""
    if isinstance(after, (str, bytes)) or not isinstance(after, Sequence):
        raise TypeError("after= takes a list of job results or job ids")
    ids = []
    for x in after:
        job_id = x.id if isinstance(x, JobResult) else x
        if not isinstance(job_id, int) or isinstance(job_id, bool) or job_id <= 0:
            raise TypeError(f"after= takes job results or job ids, got {x!r}")
        ids.append(job_id)
    return tuple(ids)


def check_timeout(timeout: object) -> float:
    seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
    if (
        not isinstance(seconds, (int, float))
        or isinstance(seconds, bool)
        or not 0 < seconds <= 366 * 86400
    ):
        raise ValueError(
            f"timeout must be a positive number of seconds or a timedelta, got {timeout!r}"
        )
    return float(seconds)


def check_expires(expires: object) -> timedelta | datetime:
    if isinstance(expires, timedelta) and expires.total_seconds() > 0:
        return expires
    if isinstance(expires, datetime):
        return expires
    raise ValueError(f"expires must be a positive timedelta or a datetime, got {expires!r}")


def expiry_time(expires: timedelta | datetime | None, enqueued: datetime) -> datetime | None:
    """The naive-UTC time a job must have started by."""
    if expires is None:
        return None
    if isinstance(expires, timedelta):
        return enqueued + expires
    return to_run_at(expires)


def to_run_at(run_after: timedelta | datetime, now: datetime | None = None) -> datetime:
    """An absolute, naive-UTC time from a delay after ``now`` (default: this host's
    time) or a time (naive times are UTC)."""
    if isinstance(run_after, timedelta):
        return (now or datetime.now(UTC).replace(tzinfo=None)) + run_after
    if isinstance(run_after, datetime):
        if run_after.tzinfo is not None:
            return run_after.astimezone(UTC).replace(tzinfo=None)
        return run_after
    raise TypeError(f"run_after must be a timedelta or a datetime, got {type(run_after).__name__}")
