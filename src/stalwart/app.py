"""The App: configuration, the task registry, enqueueing and results."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, ParamSpec, TypeVar, overload

from sqlalchemy import Connection

from .config import Config, load_config
from .context import ErrorHook, Hook, Hooks, capture_current
from .enqueued import Call, EnqueuedJobs
from .errors import SerializationError, UnknownTaskError
from .names import check_priority, check_queue_name
from .observe.enqueue import sending
from .policies import NO_RETRY, Limit, Rate, Retry
from .recurring import COMMAND_TASK, Recurring, run_command, task_name_of
from .results import JobResult, JobStatus, aware
from .serialization import dump_arguments, dumps
from .store import FailedFilter, NewJob, Store, open_store
from .tasks import (
    DEFAULT_QUEUE,
    PreparedJob,
    Task,
    TaskOptions,
    check_expires,
    check_timeout,
    expiry_time,
)
from .workflows import Workflows, batch_connection, current_batch, enqueue_prepared

P = ParamSpec("P")
R = TypeVar("R")


class App(Workflows):
    """A Stalwart application: where jobs are stored and which tasks exist.

    The database URL comes from the argument, else ``$STALWART_DATABASE_URL``, else
    ``stalwart.toml`` / ``[tool.stalwart]``, else ``sqlite:///stalwart.db``. Nothing
    connects until the first enqueue or query.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        config: Config | str | None = None,
        preserve_finished_jobs: bool | None = None,
    ) -> None:
        if isinstance(config, Config):
            base = config
        else:
            base = load_config(
                config,
                overrides={
                    "database_url": database_url,
                    "preserve_finished_jobs": preserve_finished_jobs,
                },
            )
        self.config = base
        self.tasks: dict[str, Task[Any, Any]] = {}
        self.hooks = Hooks()
        self._store: Store | None = None
        self._store_lock = threading.Lock()
        self.recurring = Recurring(self)
        # The task behind `command = "..."` recurring entries: runs configured code only.
        self.task(name=COMMAND_TASK)(self._run_command)

    # ---- the store, made on first use ----

    @property
    def store(self) -> Store:
        if self._store is None:
            with self._store_lock:
                if self._store is None:
                    self._store = open_store(
                        self.config.database_url, **self.config.store_options()
                    )
        return self._store

    def now(self) -> datetime:
        """The database's time now, naive UTC (`Clock.fresh`: measured on first use, and
        again every few minutes, in a process with no heartbeat to measure it)."""
        return self.store.clock.fresh()

    def migrate(self) -> list[str]:
        """Create or update Stalwart's tables; returns the versions applied."""
        return self.store.migrate()

    def close(self) -> None:
        if self._store is not None:
            self._store.dispose()

    def after_fork(self) -> None:
        """In a forked child: drop the parent's connections (without closing them, they
        are the parent's), so the child opens its own."""
        if self._store is not None:
            self._store.engine.dispose(close=False)
            self._store = None

    # ---- tasks ----

    @overload
    def task(self, func: Callable[P, R], /) -> Task[P, R]: ...

    @overload
    def task(
        self,
        *,
        name: str | None = None,
        queue_name: str = DEFAULT_QUEUE,
        priority: int = 0,
        retry: Retry | None = None,
        discard_on: Iterable[type[BaseException]] = (),
        on_crash: str = "retry",
        max_crashes: int | None = None,
        concurrency: Limit | Sequence[Limit] | None = None,
        rate_limit: Rate | Sequence[Rate] | None = None,
        timeout: float | timedelta | None = None,
        expires: timedelta | datetime | None = None,
    ) -> Callable[[Callable[P, R]], Task[P, R]]: ...

    def task(  # type: ignore[misc]  # P and R are bound per overload
        self,
        func: Callable[P, R] | None = None,
        /,
        *,
        name: str | None = None,
        queue_name: str = DEFAULT_QUEUE,
        priority: int = 0,
        retry: Retry | None = None,
        discard_on: Iterable[type[BaseException]] = (),
        on_crash: str = "retry",
        max_crashes: int | None = None,
        concurrency: Limit | Sequence[Limit] | None = None,
        rate_limit: Rate | Sequence[Rate] | None = None,
        timeout: float | timedelta | None = None,
        expires: timedelta | datetime | None = None,
    ) -> Task[P, R] | Callable[[Callable[P, R]], Task[P, R]]:
        """Register a function as a task: ``@app.task`` or ``@app.task(queue_name=...)``."""
        if on_crash not in ("retry", "fail"):
            raise ValueError(f"on_crash must be 'retry' or 'fail', got {on_crash!r}")
        rates = (rate_limit,) if isinstance(rate_limit, Rate) else tuple(rate_limit or ())
        if not all(isinstance(r, Rate) for r in rates):
            raise ValueError("rate_limit takes a stalwart.Rate or a list of them")

        def register(fn: Callable[P, R]) -> Task[P, R]:
            options = TaskOptions(
                name=name or f"{fn.__module__}.{fn.__qualname__}",
                queue_name=check_queue_name(queue_name),
                priority=check_priority(priority),
                retry=retry or NO_RETRY,
                discard_on=tuple(discard_on),
                on_crash=on_crash,
                max_crashes=max_crashes if max_crashes is not None else self.config.max_crashes,
                concurrency=(
                    ()
                    if concurrency is None
                    else (concurrency,)
                    if isinstance(concurrency, Limit)
                    else tuple(concurrency)
                ),
                rate_limits=rates,
                timeout=None if timeout is None else check_timeout(timeout),
                expires=None if expires is None else check_expires(expires),
            )
            existing = self.tasks.get(options.name)
            if existing is not None and existing.func is not fn:
                raise ValueError(
                    f"task name {options.name!r} is already registered for "
                    f"{existing.func.__module__}.{existing.func.__qualname__}; pass name="
                )
            task = Task(self, fn, options)
            self.tasks[options.name] = task
            return task

        return register(func) if func is not None else register

    def check_recurring(self) -> list[str]:
        """One line per recurring entry of the config that names no task of this app
        (schedules are checked when the config loads)."""
        return [
            f"{self.config.source}: recurring.{rc.key}.task: {rc.task!r} is not a task of "
            f"{self.config.app or 'this app'}"
            for rc in self.config.recurring
            if rc.task and task_name_of(rc.task) not in self.tasks
        ]

    def _run_command(self, key: str) -> None:
        commands = {rc.key: rc.command for rc in self.config.recurring if rc.command}
        run_command(commands, key)

    def get_task(self, name: str) -> Task[Any, Any]:
        try:
            return self.tasks[name]
        except KeyError:
            known = ", ".join(sorted(self.tasks)) or "none"
            raise UnknownTaskError(
                f"no task named {name!r} is registered with this app (registered: {known})"
            ) from None

    def on_job_start(self, hook: Hook) -> Hook:
        """Register ``hook(job)`` to run in the job's context before every attempt."""
        self.hooks.on_job_start.append(hook)
        return hook

    def on_job_end(self, hook: Hook) -> Hook:
        """Register ``hook(job)`` to run after every attempt: success, error or crash-retry."""
        self.hooks.on_job_end.append(hook)
        return hook

    def on_job_error(self, hook: ErrorHook) -> ErrorHook:
        """Register ``hook(job, exc)`` for every failed attempt (retried or not, timeouts
        and cancels too), in the job's context; its own failure is logged, nothing more."""
        self.hooks.on_job_error.append(hook)
        return hook

    # ---- enqueueing ----

    def enqueue(
        self,
        task: Task[Any, Any] | str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        connection: Connection | None = None,
        run_after: timedelta | datetime | None = None,
        priority: int | None = None,
        queue_name: str | None = None,
    ) -> JobResult:
        """Store one job. With ``connection``, in the caller's transaction."""
        t = self._resolve(task)
        if run_after is not None or priority is not None or queue_name is not None:
            t = t.using(run_after=run_after, priority=priority, queue_name=queue_name)
        now = self.now()
        with sending(t.options.queue_name, t.options.name) as send:
            job = self._new_job(t, args, kwargs or {}, send.context(capture_current()), now)
            # One time for the row and the result: what enqueue returns is what is stored.
            conn = connection or batch_connection()
            [job_id] = self.store.jobs_enqueue([job], conn=conn, now=now)
            send.sent([job_id])
        if job.unique_key is not None and connection is None:
            return self.get_result(job_id)  # may be the job already holding the key
        return self._enqueued_result(job_id, job, args, kwargs or {}, now)

    def enqueue_many(
        self,
        task: Task[Any, Any] | str | Sequence[PreparedJob],
        calls: Iterable[Call] = (),
        *,
        connection: Connection | None = None,
    ) -> EnqueuedJobs:
        """Store many jobs of one task in multi-row inserts; returns them in order.

        ``calls`` holds ``(args, kwargs)`` pairs; or pass a list of prepared jobs
        (``task.prepare(...)``, of any tasks) alone. Every argument is checked before
        anything is written: one bad argument stores nothing.
        """
        if not isinstance(task, (Task, str)):
            return enqueue_prepared(self, task, connection)
        t = self._resolve(task)
        calls = list(calls)
        with sending(t.options.queue_name, t.options.name, len(calls)) as send:
            context, now = send.context(capture_current()), self.now()
            jobs = []
            for i, (args, kwargs) in enumerate(calls):
                try:
                    jobs.append(self._new_job(t, args, kwargs, context, now))
                except SerializationError as exc:
                    raise SerializationError(f"enqueue_many calls[{i}]: {exc}") from None
            ids = self.store.jobs_enqueue(jobs, conn=connection or batch_connection(), now=now)
            send.sent(ids)
        return EnqueuedJobs(self, ids, jobs, calls, now)

    def _resolve(self, task: Task[Any, Any] | str) -> Task[Any, Any]:
        return self.get_task(task) if isinstance(task, str) else task

    def new_job(
        self, task: Task[Any, Any], args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> NewJob:
        """A job of ``task`` ready to store (arguments checked, context captured)."""
        return self._new_job(task, args, kwargs, capture_current(), self.now())

    def _new_job(
        self,
        task: Task[Any, Any],
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        context: str | None,
        now: datetime,
    ) -> NewJob:
        args_json, kwargs_json = dump_arguments(args, kwargs)
        opts = task.options
        limits = rates = None
        if opts.concurrency:
            limits = dumps([lim.semaphore(opts.name, args, kwargs) for lim in opts.concurrency])
        if opts.rate_limits:
            rates = dumps([r.bucket(opts.name, args, kwargs) for r in opts.rate_limits])
        batch = current_batch()
        return NewJob(
            task_name=opts.name,
            queue_name=opts.queue_name,
            priority=opts.priority,
            args=args_json,
            kwargs=kwargs_json,
            scheduled_at=opts.run_after or now,
            context=context,
            concurrency_limits=limits,
            unique_key=opts.unique_key,
            unique_conflict=opts.on_conflict,
            timeout=opts.timeout,
            expires_at=expiry_time(opts.expires, now),
            rate_limits=rates,
            batch_id=None if batch is None else batch.id,
            after=opts.after,
            on_dependency_failure=opts.on_dependency_failure,
        )

    def _enqueued_result(
        self,
        job_id: int,
        job: NewJob,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        now: datetime,
    ) -> JobResult:
        return JobResult(
            id=job_id,
            status=(
                JobStatus.WAITING
                if job.after
                else JobStatus.SCHEDULED
                if job.scheduled_at > now
                else JobStatus.READY
            ),
            task_name=job.task_name,
            args=list(args),
            kwargs=dict(kwargs),
            queue_name=job.queue_name,
            priority=job.priority,
            enqueued_at=aware(now),
            scheduled_at=aware(job.scheduled_at),
            batch_id=job.batch_id,
            _app=self,
        )

    # ---- results and operations ----

    def get_result(self, job_id: int) -> JobResult:
        """The job as stored now; raises JobNotFound for an unknown id."""
        return JobResult.from_row(self.store.job_get(job_id), app=self)

    def cancel_job(self, job_id: int) -> bool:
        """Cancel a job that has not ended; it ends FAILED with a `Cancelled` error and
        is never retried. A waiting job (scheduled, ready, blocked) leaves its line at
        once; a running one sees ``current_job().cancelled`` become true and gets
        `Cancelled` raised in it (an async one is cancelled) within about a second.
        False if the job has ended (or never existed)."""
        return self.store.job_cancel(job_id)

    def pause_queue(self, queue_name: str) -> bool:
        return self.store.queue_pause(check_queue_name(queue_name))

    def resume_queue(self, queue_name: str) -> bool:
        return self.store.queue_resume(check_queue_name(queue_name))

    def paused_queues(self) -> set[str]:
        return self.store.queues_paused()

    def retry_failed(
        self,
        job_ids: Sequence[int] | None = None,
        *,
        task_name: str | None = None,
        queue_name: str | None = None,
        error_class: str | None = None,
        rerun_batch_callbacks: bool = False,
    ) -> int:
        """Put failed jobs back in ready; returns how many. No filter: all failed jobs.
        A finished batch of a retried job runs its callbacks again only if asked."""
        which = FailedFilter(
            job_ids, task_name=task_name, queue_name=queue_name, error_class=error_class
        )
        return self.store.failed_retry(which, rerun_batch_callbacks=rerun_batch_callbacks)

    def discard_failed(
        self,
        job_ids: Sequence[int] | None = None,
        *,
        task_name: str | None = None,
        queue_name: str | None = None,
        error_class: str | None = None,
    ) -> int:
        """Delete failed jobs for good; returns how many."""
        return self.store.failed_discard(
            FailedFilter(
                job_ids, task_name=task_name, queue_name=queue_name, error_class=error_class
            )
        )

    def clear_finished_jobs(self, older_than: timedelta | None = None) -> int:
        if older_than is None:
            older_than = timedelta(seconds=self.config.clear_finished_jobs_after)
        return self.store.jobs_clear_finished(self.now() - older_than)
