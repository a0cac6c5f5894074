"""One attempt of a claimed job, from the checks before it starts to its outcome.

Before the job's code runs: a job cancelled while it waited in the worker does not
start; a job past its ``expires`` fails with `Expired`; a job with start rates takes a
start of each (or joins its rate's line). Then the job runs in a fresh context (sync on
a pool thread, async on the worker's loop), watched for its timeout and for cancels
(`interrupts.py`), and what it returned or raised becomes its outcome (`outcomes.py`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from ..context import JobInfo, run_async_inline, run_sync
from ..errors import Cancelled, DatabaseUnavailable, Expired, error_record
from ..observe.attempts import AttemptObserver
from ..serialization import loads
from ..store import ClaimedJob, Clock, Outcome, StoreProtocol
from .interrupts import Interrupts, Running
from .outcomes import failed, succeeded

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.worker")


class Attempts:
    def __init__(
        self,
        app: App,
        store: Callable[[], StoreProtocol],
        interrupts: Interrupts,
        push: Callable[[Outcome], None],
        shutting_down: threading.Event,
        worker: str,
    ) -> None:
        self.app, self._store, self.interrupts = app, store, interrupts
        self._push, self.shutting_down, self.worker = push, shutting_down, worker
        # Spans, error hooks, the attempt's log line and its counters.
        self.observer = AttemptObserver(app)

    def push(self, job: ClaimedJob, outcome: Outcome, error: BaseException | None = None) -> None:
        """Hand the outcome to the completer, once it is reported."""
        self.observer.ended(job, outcome, error)
        self._push(outcome)

    def _info(self, job: ClaimedJob, running: Running) -> JobInfo:
        return JobInfo(
            id=job.id,
            task_name=job.task_name,
            attempt=job.attempts + 1,
            queue_name=job.queue_name,
            enqueued_at=job.enqueued_at,
            _shutdown=self.shutting_down,
            _cancel=running,
            worker=self.worker,
            batch_id=job.batch_id,
            _app=self.app,
        )

    # ---- sync and async ----

    @property
    def clock(self) -> Clock:
        """The database's time: every time an attempt records or compares."""
        return self._store().clock

    def run_sync(self, job: ClaimedJob) -> None:
        started = self.clock.time()
        if (early := self.before(job, started)) is not None:
            self.push(job, early)
            return
        running = self.interrupts.begin(job, started, thread=threading.get_ident())
        if running is None:
            self.push(job, not_started(job, Cancelled("cancelled before it started"), self.clock))
            return
        info = self._info(job, running)
        try:
            try:
                task = self.app.get_task(job.task_name)
                args, kwargs = loads(job.args), loads(job.kwargs)
                func = self.observer.wrap(task.func, job, info, partial(_as_raised, running), False)
                value = run_sync(func, args, kwargs, info, job.context, self.app.hooks)
            finally:
                alive = self.interrupts.end(running)
                _flush(info)
            outcome, error = self._returned(job, running, value, started)
        except BaseException as exc:  # the job's error (or a return value not JSON)
            alive = self.interrupts.end(running)
            error = _as_raised(running, exc)
            outcome = failed(self.app, job, error, started)
        if alive:
            self.push(job, outcome, error)

    async def run_async(self, job: ClaimedJob) -> None:
        started = self.clock.time()
        # A rate's start is a database call: off the loop.
        early = await asyncio.to_thread(self.before, job, started) if job.rate_limits else None
        if early is None and job.expires_at is not None:
            early = self.before(job, started)
        if early is not None:
            self.push(job, early)
            return
        loop = asyncio.get_running_loop()
        current = asyncio.current_task()
        running = self.interrupts.begin(job, started, task=current, loop=loop)
        if running is None:
            self.push(job, not_started(job, Cancelled("cancelled before it started"), self.clock))
            return
        info = self._info(job, running)
        try:
            try:
                task = self.app.get_task(job.task_name)
                args, kwargs = loads(job.args), loads(job.kwargs)
                func = self.observer.wrap(task.func, job, info, partial(_as_raised, running), True)
                value = await run_async_inline(
                    func, args, kwargs, info, job.context, self.app.hooks
                )
            finally:
                alive = self.interrupts.end(running)
                if info._workflow is not None:
                    await asyncio.to_thread(_flush, info)
            outcome, error = self._returned(job, running, value, started)
        except BaseException as exc:
            alive = self.interrupts.end(running)
            error = _as_raised(running, exc)
            outcome = failed(self.app, job, error, started)
        if alive:
            self.push(job, outcome, error)

    def _returned(
        self, job: ClaimedJob, running: Running, value: object, started: float
    ) -> tuple[Outcome, BaseException | None]:
        # A job that saw it was cancelled and returned early is cancelled all the same.
        if running.cancel_asked:
            error = running.error()
            return failed(self.app, job, error, started), error
        return succeeded(job, value, started, self.clock), None

    def given_up(self, running: Running) -> Outcome:
        """The outcome of a job that did not stop after it was interrupted (reported
        here: the worker pushes it to the completer itself)."""
        error = running.error()
        outcome = failed(self.app, running.job, error, running.started)
        self.observer.ended(running.job, outcome, error)
        return outcome

    # ---- before the job's code ----

    def before(self, job: ClaimedJob, started: float) -> Outcome | None:
        """The outcome of a job that must not start now, or None to run it."""
        if job.expires_at is not None and self.clock.now() > job.expires_at:
            return not_started(
                job,
                Expired(f"not started by {job.expires_at:%Y-%m-%d %H:%M:%S} UTC (expires)"),
                self.clock,
            )
        if not job.rate_limits:
            return None
        for attempt in range(5):
            try:
                denied = self._store().rate_acquire(job.id, job.priority, job.rate_limits, started)
            except DatabaseUnavailable:
                time.sleep(0.2 * 2**attempt)
                continue
            if denied is None:
                return None
            return throttled(job, denied.key, denied.due_at, self.clock)
        # The database is away: the job waits in its first rate's line, to be let go
        # once the database (and the dispatcher) are back.
        first = json.loads(job.rate_limits)[0]["key"]
        return throttled(job, str(first), self.clock.now() + timedelta(seconds=5), self.clock)


def _flush(info: JobInfo) -> None:
    """The job's last progress, if it reported one not stored yet."""
    if info._workflow is not None:
        try:
            info._workflow.flush()
        except Exception:  # progress is a report: never the job's outcome
            log.warning("job %s: its last progress could not be stored", info.id, exc_info=True)


def _as_raised(running: Running, exc: BaseException) -> BaseException:
    """The exception the attempt failed with: ours, said in words, where we raised it
    (it keeps the job's traceback, which shows where it was)."""
    if running.reason is None:
        return exc
    return running.error().with_traceback(exc.__traceback__)


def not_started(job: ClaimedJob, error: BaseException, clock: Clock) -> Outcome:
    """A final failure of a job that never ran (cancelled before it started, expired):
    no attempt counted."""
    return Outcome(
        job_id=job.id,
        started_at=0.0,
        finished_at=clock.time(),
        kind="failure",
        error=error_record(error, clock.now()),
        counts_attempt=False,
        concurrency_limits=job.concurrency_limits,
        workflow=job.workflow,
    )


def throttled(job: ClaimedJob, key: str, due: datetime, clock: Clock) -> Outcome:
    """Over a start rate: the job joins the rate's line; no attempt counted."""
    return Outcome(
        job_id=job.id,
        started_at=0.0,
        finished_at=clock.time(),
        kind="throttle",
        retry_at=due,
        counts_attempt=False,
        concurrency_limits=job.concurrency_limits,
        workflow=job.workflow,
        rate_key=key,
    )
