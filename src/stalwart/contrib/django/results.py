"""Stalwart's jobs as Django's `TaskResult`: ids, statuses, times, errors, workers."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ...results import JobError, JobResult, JobStatus, aware
from .compat import TaskError, TaskResult, TaskResultDoesNotExist, TaskResultStatus, set_field

if TYPE_CHECKING:
    from .seam import BackendSeam

# Ids are the jobs' integer keys, written in decimal: "1" to 2**63 - 1, no sign, no
# leading zero (so one job has one id string).
_ID = re.compile(r"[1-9][0-9]{0,18}")
_MAX_ID = 2**63 - 1

# Stalwart records no worker per past attempt: each counts under this name.
PAST_WORKER = "stalwart"

_STATUSES = {
    JobStatus.SUCCESSFUL: TaskResultStatus.SUCCESSFUL,
    JobStatus.FAILED: TaskResultStatus.FAILED,
    JobStatus.RUNNING: TaskResultStatus.RUNNING,
    # Waiting for its dependencies: not started, like any job in line.
    JobStatus.WAITING: TaskResultStatus.READY,
}


def parse_id(result_id: object) -> int:
    """The job id of a result id; TaskResultDoesNotExist for anything that is not one."""
    text = str(result_id) if isinstance(result_id, (str, int)) else ""
    if isinstance(result_id, bool) or not _ID.fullmatch(text) or int(text) > _MAX_ID:
        raise TaskResultDoesNotExist(f"no task result with id {result_id!r}")
    return int(text)


def status_of(status: JobStatus | str) -> Any:
    """Django's four statuses: waiting in any form (scheduled, blocked, WAITING for its
    dependencies) reads as READY."""
    try:
        known = JobStatus(status)
    except ValueError:
        return TaskResultStatus.READY
    return _STATUSES.get(known, TaskResultStatus.READY)


def exception_path(error: JobError) -> str:
    """An importable path: builtins are recorded by bare name (``ValueError``)."""
    name = error.exception_class
    return name if "." in name else f"builtins.{name}"


def task_error(error: JobError) -> Any:
    return TaskError(exception_class_path=exception_path(error), traceback=error.traceback)


def finished_at(job: JobResult) -> datetime | None:
    """A failed job ended when its last attempt failed (Stalwart leaves finished_at
    to successes)."""
    if job.finished_at is not None or job.status != JobStatus.FAILED:
        return job.finished_at
    times = [e.at for e in job.errors if e.at is not None]
    return aware(max(times)) if times else None


def to_task_result(
    backend: BackendSeam, job: JobResult, *, running_worker: str | None = None
) -> Any:
    """The TaskResult of ``job``. ``running_worker`` names the worker of an attempt in
    progress (the runner's own view); otherwise a running attempt counts as one."""
    base = backend.resolve_task(job.task_name)
    changes: dict[str, Any] = {}
    if job.priority != base.priority:
        changes["priority"] = job.priority
    if job.queue_name != base.queue_name:
        changes["queue_name"] = job.queue_name
    if job.scheduled_at and job.enqueued_at and job.scheduled_at > job.enqueued_at:
        changes["run_after"] = job.scheduled_at
    task = replace(base, **changes) if changes else base
    attempts = job.attempts
    workers = [PAST_WORKER] * attempts
    if job.status == JobStatus.RUNNING or running_worker is not None:
        workers.append(running_worker or PAST_WORKER)
    result = TaskResult(
        task=task,
        id=str(job.id),
        status=TaskResultStatus.RUNNING if running_worker else status_of(job.status),
        enqueued_at=job.enqueued_at,
        started_at=job.started_at,
        finished_at=finished_at(job),
        last_attempted_at=job.started_at,
        args=job.args,
        kwargs=job.kwargs,
        backend=backend.alias,
        errors=[task_error(e) for e in job.errors],
        worker_ids=workers,
    )
    if result.status == TaskResultStatus.SUCCESSFUL:
        set_field(result, "_return_value", job.return_value)
    return result
