"""What a job is, read back: `JobResult`, its status, its errors and its history."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from .serialization import loads

if TYPE_CHECKING:
    from .store import JobRow

# The (args, kwargs) of one job of `enqueue_many`.


class ResultApp(Protocol):
    """What a job result needs of its App (`stalwart.App`): to read the job again."""

    def get_result(self, job_id: int) -> JobResult: ...


class JobStatus(enum.StrEnum):
    WAITING = "WAITING"  # for the jobs it depends on (``using(after=...)``)
    SCHEDULED = "SCHEDULED"
    READY = "READY"
    BLOCKED = "BLOCKED"
    RUNNING = "RUNNING"
    SUCCESSFUL = "SUCCESSFUL"
    FAILED = "FAILED"


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
class JobEvent:
    """Something that happened to a job besides its attempts: handed back at a shutdown,
    suspected in a crash, run alone, cancel asked (``JobResult.history``)."""

    at: datetime | None
    event: str
    detail: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> JobEvent:
        at = d.get("at")
        return cls(
            at=datetime.fromisoformat(at) if isinstance(at, str) else None,
            event=str(d.get("event", "")),
            detail=str(d.get("detail", "")),
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
    # Crashes of its process charged to this job (alone in a process when it died).
    crashes: int = 0
    errors: list[JobError] = field(default_factory=list)
    return_value: Any = None
    # How often a shutdown handed it back while it ran.
    interruptions: int = 0
    history: list[JobEvent] = field(default_factory=list)
    timeout: float | None = None
    expires_at: datetime | None = None
    # The batch it belongs to, and its last reported progress
    # ({"done", "total", "message", "at"}, ``current_job().set_progress``).
    batch_id: int | None = None
    progress: dict[str, Any] | None = None
    _app: ResultApp | None = field(default=None, repr=False, compare=False)

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
    def from_row(cls, row: JobRow, app: ResultApp | None = None) -> JobResult:
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
            interruptions=row.interruptions,
            history=[JobEvent.from_dict(e) for e in (loads(row.history) or [])],
            timeout=row.timeout,
            expires_at=aware(row.expires_at),
            batch_id=row.batch_id,
            progress=loads(row.progress) if row.progress else None,
            _app=app,
        )
