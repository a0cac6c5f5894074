"""Plain records passed between the store and the rest of Stalwart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(slots=True)  # not frozen: frozen __init__ costs ~1 us a job in bulk enqueue
class NewJob:
    task_name: str
    queue_name: str
    priority: int
    args: str  # JSON text
    kwargs: str  # JSON text
    scheduled_at: datetime
    context: str | None = None
    concurrency_limits: str | None = None
    unique_key: str | None = None
    # With a unique key already taken by an unfinished job: "ignore" | "replace" | "raise".
    unique_conflict: str = "raise"
    timeout: float | None = None  # seconds an attempt may run
    expires_at: datetime | None = None  # not started by then: fails with Expired
    rate_limits: str | None = None  # JSON list of {"key", "limit", "per"}
    batch_id: int | None = None  # joins this batch (its counters count the job)
    after: tuple[int, ...] = ()  # waits (WAITING) until these jobs succeeded
    on_dependency_failure: str = "fail"  # "fail" (DependencyFailed) or "run"
    pass_as: str | None = None  # the keyword that receives the dependencies' result


@dataclass(slots=True)  # not frozen: made by the hundred per claim, frozen init is slow
class ClaimedJob:
    """What a worker needs to run a job it has claimed."""

    id: int
    task_name: str
    queue_name: str
    priority: int
    args: str
    kwargs: str
    context: str | None
    attempts: int  # attempts before this one
    enqueued_at: datetime
    claimed_at: datetime
    concurrency_limits: str | None = None
    timeout: float | None = None
    expires_at: datetime | None = None
    rate_limits: str | None = None
    # When it was due (a retry: its retry time): the start of its pickup delay.
    scheduled_at: datetime | None = None
    # Read at claim time: its completion has batch or dependency bookkeeping to do.
    batch_id: int | None = None
    has_dependents: bool | None = None

    @property
    def workflow(self) -> bool:
        return self.batch_id is not None or bool(self.has_dependents)


@dataclass(slots=True)
class Outcome:
    """How one attempt of a claimed job ended; written by `claimed_complete`."""

    job_id: int
    # Seconds since the epoch (time.time()): cheaper to take per job than a datetime;
    # the store turns them into timestamps, a batch at a time.
    started_at: float
    finished_at: float
    # "success" | "failure" | "snooze" | "discard" | "throttle" (over a start rate: in
    # line until ``retry_at``, no attempt counted) | "expire" (not started in time)
    kind: str
    result: str | None = None  # JSON text of the return value
    error: dict[str, Any] | None = None  # class, message, traceback, at
    # For failures and snoozes: when to run again; None for a final failure.
    retry_at: datetime | None = None
    # Snoozes do not count as an attempt.
    counts_attempt: bool = True
    # The semaphores the job holds (JSON), released when it leaves claimed.
    concurrency_limits: str | None = None
    # For "throttle": the rate key whose line the job joins.
    rate_key: str | None = None
    # The job belongs to a batch or has dependents: its end is settled by `flow.py`.
    workflow: bool = False


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    status: str
    task_name: str
    queue_name: str
    priority: int
    args: str
    kwargs: str
    context: str | None
    concurrency_limits: str | None
    unique_key: str | None
    scheduled_at: datetime
    enqueued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    crashes: int
    errors: str | None
    result: str | None
    timeout: float | None = None
    expires_at: datetime | None = None
    interruptions: int = 0
    history: str | None = None
    batch_id: int | None = None
    progress: str | None = None  # JSON {"done", "total", "message", "at"}


@dataclass(frozen=True, slots=True)
class QueueSelector:
    """The queues a worker takes jobs from, in order: names, "*", or "prefix*"."""

    patterns: tuple[str, ...] = ("*",)

    def matches(self, queue: str) -> bool:
        return any(
            p == "*" or p == queue or (p.endswith("*") and queue.startswith(p[:-1]))
            for p in self.patterns
        )
