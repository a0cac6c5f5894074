"""What the worker reports of each attempt: the CONSUMER span and the error hooks
around the job's function (inside the job's context), one log line when it ends, and
the finished counters once its result is written. Crashes charged by a supervisor are
reported by `crashed`.

With no tracer provider, no ``on_job_error`` hook and metrics off, `wrap` hands the
job's function back as it is and `ended` writes one log line (or checks the level).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..context import JobInfo, in_job_context
from ..errors import Snooze
from ..store import ClaimedJob, Outcome
from ..store.base import to_epoch
from . import hub
from .logs import log_attempt
from .tracing import carrier_of, tracer

if TYPE_CHECKING:
    from ..app import App
    from ..store.claimed import Recovery
    from .otel import Otel

__all__ = ["AttemptObserver", "crashed", "outcome_label"]

log = logging.getLogger("stalwart.jobs")

# The finished counter's outcomes (metrics.OUTCOMES), and how other ends count there.
_METRIC_OUTCOMES = {
    "succeeded": "succeeded",
    "failed": "failed",
    "expired": "failed",
    "retried": "retried",
    "discarded": "discarded",
    "cancelled": "cancelled",
    "timeout": "timeout",
}


def outcome_label(outcome: Outcome) -> str:
    """How an attempt ended, in one word (the log's ``outcome`` field)."""
    kind = outcome.kind
    if kind == "success":
        return "succeeded"
    if kind in ("discard", "snooze", "throttle"):
        return {"discard": "discarded", "snooze": "snoozed", "throttle": "throttled"}[kind]
    cls = str((outcome.error or {}).get("class", ""))
    named = {
        "stalwart.errors.Cancelled": "cancelled",
        "stalwart.errors.JobTimeout": "timeout",
        "stalwart.errors.Expired": "expired",
    }
    if cls in named:
        return named[cls]
    return "retried" if outcome.retry_at is not None else "failed"


class AttemptObserver:
    def __init__(self, app: App) -> None:
        self.app = app
        # Jobs whose error hooks ran inside their attempt (not to run them twice).
        self._reported: set[int] = set()
        # Attempts ended here, counted once their results are written: id() of the
        # Outcome (alive until written) -> (queue, task, outcome, duration, pickup
        # delay). Not the job id: a retry can end before its first attempt is counted.
        self._pending: dict[int, tuple[str, str, str, float | None, float | None]] = {}

    # ---- around the job's function, inside its context ----

    def wrap(
        self,
        func: Callable[..., Any],
        job: ClaimedJob,
        info: JobInfo,
        raised: Callable[[BaseException], BaseException],
        is_async: bool,
    ) -> Callable[..., Any]:
        """``func`` as the attempt runs it: in its CONSUMER span, reporting its error.
        ``raised`` turns what came out of it into what the attempt failed with."""
        otel = tracer()
        if otel is None and not self.app.hooks.on_job_error:
            return func
        carrier = carrier_of(job.context) if otel is not None else {}

        if is_async:

            async def watched_async(*args: Any, **kwargs: Any) -> Any:
                with self._span(otel, carrier, info) as span:
                    try:
                        return await func(*args, **kwargs)
                    except BaseException as exc:
                        self._failed(otel, span, info, raised(exc))
                        raise

            return watched_async

        def watched(*args: Any, **kwargs: Any) -> Any:
            with self._span(otel, carrier, info) as span:
                try:
                    return func(*args, **kwargs)
                except BaseException as exc:
                    self._failed(otel, span, info, raised(exc))
                    raise

        return watched

    @contextmanager
    def _span(self, otel: Otel | None, carrier: dict[str, str], info: JobInfo) -> Iterator[Any]:
        if otel is None:
            yield None
            return
        with otel.process(carrier, info.id, info.task_name, info.queue_name, info.attempt) as span:
            yield span

    def _reportable(self, task_name: str, error: BaseException) -> bool:
        if isinstance(error, Snooze):
            return False
        task = self.app.tasks.get(task_name)
        return task is None or not isinstance(error, task.options.discard_on)

    def _failed(self, otel: Otel | None, span: Any, info: JobInfo, error: BaseException) -> None:
        if not self._reportable(info.task_name, error):
            return
        if otel is not None:
            otel.failed(span, error)
        if info.id is not None:
            self._reported.add(info.id)
        self._run_hooks(info, error)

    def _run_hooks(self, info: JobInfo, error: BaseException) -> None:
        for hook in self.app.hooks.on_job_error:
            try:
                hook(info, error)
            except Exception:  # a reporter's failure never changes the job's outcome
                log.exception("on_job_error hook %r failed for job %s", hook, info.id)

    # ---- when it ended ----

    def ended(self, job: ClaimedJob, outcome: Outcome, error: BaseException | None) -> None:
        """The attempt's outcome is built (and about to be written)."""
        label = outcome_label(outcome)
        duration = outcome.finished_at - outcome.started_at if outcome.started_at else None
        if error is not None and self._reportable(job.task_name, error):
            if job.id in self._reported:
                self._reported.discard(job.id)
            elif self.app.hooks.on_job_error:
                # It failed outside the function (unknown task, a return value that is
                # not JSON, stuck past its timeout): the hooks run in a new job context.
                info = JobInfo(
                    job.id, job.task_name, job.attempts + 1, job.queue_name, job.enqueued_at
                )
                in_job_context(info, job.context, lambda: self._run_hooks(info, error))
        log_attempt(
            job.id,
            job.task_name,
            job.queue_name,
            job.attempts + 1,
            label,
            duration,
            error,
            _detail(outcome),
            final=outcome.retry_at is None,
        )
        metrics = hub.metrics()
        counted = _METRIC_OUTCOMES.get(label)
        if metrics is not None and counted is not None:
            pickup = None
            if outcome.started_at and job.scheduled_at is not None:
                pickup = outcome.started_at - to_epoch(job.scheduled_at)
            self._pending[id(outcome)] = (job.queue_name, job.task_name, counted, duration, pickup)

    def written(self, outcomes: Sequence[Outcome], ids: Sequence[int]) -> None:
        """The completer wrote ``ids`` of ``outcomes`` (the rest were dropped: their jobs
        were handed elsewhere meanwhile): count the written ones."""
        metrics = hub.metrics()
        if metrics is None or not self._pending:
            return
        done = set(ids)
        for o in outcomes:
            pending = self._pending.pop(id(o), None)
            if pending is not None and o.job_id in done:
                metrics.finished(*pending)


def _detail(outcome: Outcome) -> str:
    error = outcome.error
    text = f"{error.get('class', '')}: {error.get('message', '')}" if error else ""
    if outcome.retry_at is not None and outcome.kind in ("failure", "snooze"):
        text += f"{'; ' if text else ''}runs again at {outcome.retry_at:%Y-%m-%d %H:%M:%S} UTC"
    return text


def crashed(recovery: Recovery, error: dict[str, Any]) -> None:
    """A supervisor charged crashes to jobs (they ran alone when their process died)."""
    metrics = hub.metrics()
    for job_id in [*recovery.retried, *recovery.failed]:
        queue, task = recovery.labels.get(job_id, ("", ""))
        log_attempt(job_id, task, queue, None, "crashed", None, detail=str(error.get("message")))
        if metrics is not None:
            metrics.finished(queue, task, "crashed")
