"""How one attempt ended, as the store records it: the one place that turns a return
value (`succeeded`) or an exception (`failed`) into an `Outcome` — success, failure with
or without a retry, snooze, discard — for sync and async jobs alike. (Each attempt's log
line is written where it ends: `observe/attempts.py`.)"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..errors import Cancelled, SerializationError, Snooze, UnknownTaskError, error_record
from ..serialization import check_json, dumps
from ..store import ClaimedJob, Clock, Outcome

if TYPE_CHECKING:
    from ..app import App


def succeeded(job: ClaimedJob, value: Any, started: float, clock: Clock) -> Outcome:
    """The attempt returned ``value``; SerializationError if it is not JSON. Times are
    the database's (``clock``), like ``started``."""
    if value is not None:
        check_json(value, f"return value of task {job.task_name}")
    return Outcome(
        job_id=job.id,
        started_at=started,
        finished_at=clock.time(),
        kind="success",
        result=dumps(value) if value is not None else None,
        concurrency_limits=job.concurrency_limits,
        workflow=job.workflow,
    )


def failed(app: App, job: ClaimedJob, exc: BaseException, started: float) -> Outcome:
    """The attempt raised ``exc``: a retry, a snooze, a discard or a final failure."""
    clock = app.store.clock
    finished = clock.time()
    now = clock.now()
    if isinstance(exc, Snooze):
        return Outcome(
            job_id=job.id,
            started_at=started,
            finished_at=finished,
            kind="snooze",
            retry_at=now + timedelta(seconds=exc.seconds),
            counts_attempt=False,
            concurrency_limits=job.concurrency_limits,
            workflow=job.workflow,
        )
    error = error_record(exc, now)
    task = app.tasks.get(job.task_name)
    if task is not None and isinstance(exc, task.options.discard_on):
        # discard_on: the job ends here, finished, with the exception on record.
        return Outcome(
            job_id=job.id,
            started_at=started,
            finished_at=finished,
            kind="discard",
            error={**error, "discarded": True},
            concurrency_limits=job.concurrency_limits,
            workflow=job.workflow,
        )
    retry_at = None
    # Cancelled: by request, never again; a task unknown here or a result that is not
    # JSON: the same next time.
    final = (UnknownTaskError, SerializationError, Cancelled)
    retryable = task is not None and not isinstance(exc, final)
    if task is not None and retryable and task.options.retry.should_retry(job.attempts + 1, exc):
        retry_at = now + timedelta(seconds=task.options.retry.delay(job.attempts + 1))
    return Outcome(
        job_id=job.id,
        started_at=started,
        finished_at=finished,
        kind="failure",
        error=error,
        retry_at=retry_at,
        concurrency_limits=job.concurrency_limits,
        workflow=job.workflow,
    )
