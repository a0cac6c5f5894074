"""What a worker runs for a Django task: the body of the Stalwart task registered for it.

Each attempt builds the running `TaskResult` (from the job's row), sends
``task_started``, calls the task (with a `TaskContext` when it takes one; an
``async def`` task through ``async_to_sync``, in the worker's thread), normalizes the
return value as Django's backends do, and sends ``task_finished`` with the status the
attempt leaves the job in: SUCCESSFUL, FAILED, or READY when Stalwart runs it again (a
retry, a snooze). The signals' sender is the backend class.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.utils import timezone

from ...context import current_job
from ...errors import Snooze
from .compat import (
    TaskContext,
    TaskError,
    TaskResultStatus,
    normalize_json,
    set_field,
    task_finished,
    task_started,
)
from .results import to_task_result

if TYPE_CHECKING:
    from .seam import BackendSeam


def register_task(backend: BackendSeam, task: Any) -> None:
    """Register the Stalwart task that runs Django task ``task`` on ``backend.app``."""
    path = task.module_path
    if path in backend.app.tasks:
        return
    body = _body(backend, task)
    # The dashboard names positional arguments after the task's own parameters.
    params = list(inspect.signature(task.func).parameters.values())
    if task.takes_context:
        params = params[1:]
    body.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    backend.app.task(
        name=path,
        queue_name=task.queue_name,
        priority=task.priority,
        retry=getattr(task, "retry", None),
        discard_on=getattr(task, "discard_on", ()),
        on_crash=getattr(task, "on_crash", "retry"),
        max_crashes=getattr(task, "max_crashes", None),
        concurrency=getattr(task, "concurrency", ()) or None,
    )(body)


def _body(backend: BackendSeam, task: Any) -> Callable[..., Any]:
    path = task.module_path

    def run(*args: Any, **kwargs: Any) -> Any:
        return run_attempt(backend, path, list(args), kwargs)

    functools.update_wrapper(run, task.func, updated=())
    del run.__wrapped__  # type: ignore[attr-defined]
    return run


def run_attempt(backend: BackendSeam, path: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    info = current_job()
    assert info.id is not None, "a Django task runs as a job (use task.call() inline)"
    job = backend.app.get_result(info.id)
    result = to_task_result(backend, job, running_worker=info.worker or "stalwart")
    now = timezone.now()
    if result.started_at is None or job.attempts == 0:
        set_field(result, "started_at", now)
    set_field(result, "last_attempted_at", now)
    task = result.task
    sender = type(backend)
    task_started.send(sender, task_result=result)
    try:
        if task.takes_context:
            value = task.call(TaskContext(task_result=result), *args, **kwargs)
        else:
            value = task.call(*args, **kwargs)
        value = normalize_json(value)
    except BaseException as exc:
        status = _status_after(backend, path, exc, info.attempt)
        if status != TaskResultStatus.READY:
            set_field(result, "finished_at", timezone.now())
        if not isinstance(exc, Snooze):
            result.errors.append(
                TaskError(
                    exception_class_path=f"{type(exc).__module__}.{type(exc).__qualname__}",
                    traceback="".join(traceback.format_exception(exc)),
                )
            )
        set_field(result, "status", status)
        task_finished.send(sender, task_result=result)
        raise
    set_field(result, "finished_at", timezone.now())
    set_field(result, "status", TaskResultStatus.SUCCESSFUL)
    set_field(result, "_return_value", value)
    task_finished.send(sender, task_result=result)
    return value


def _status_after(backend: BackendSeam, path: str, exc: BaseException, attempt: int) -> Any:
    """The status this failed attempt leaves the job in (as `processes/outcomes.py`
    decides it): READY when it runs again, SUCCESSFUL when discarded, else FAILED."""
    if isinstance(exc, Snooze):
        return TaskResultStatus.READY
    options = backend.app.tasks[path].options
    if isinstance(exc, options.discard_on):
        return TaskResultStatus.SUCCESSFUL
    if options.retry.should_retry(attempt, exc):
        return TaskResultStatus.READY
    return TaskResultStatus.FAILED
