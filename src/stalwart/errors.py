"""Exceptions raised by Stalwart. Every one says what is wrong and where."""

from __future__ import annotations

import traceback
from datetime import datetime
from typing import Any


class StalwartError(Exception):
    """Base class of every error Stalwart raises on purpose."""


class ConfigError(StalwartError):
    """The configuration is invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("\n".join(problems))


class SerializationError(StalwartError, TypeError):
    """An argument or return value is not JSON."""


class UnknownTaskError(StalwartError, LookupError):
    """A job names a task that is not registered with the app."""


class JobNotFound(StalwartError, LookupError):
    """No job with that id exists (it never did, or it was discarded or cleared)."""


class DependencyFailed(StalwartError):
    """A job this one waited for (``using(after=...)``) failed for good or was
    cancelled: this one ends FAILED without running."""


class DependencyNotFound(StalwartError, LookupError):
    """``using(after=...)`` named a job that does not exist (dependencies must exist
    when the dependent is enqueued)."""


class BatchNotFound(StalwartError, LookupError):
    """No batch with that id exists."""


class UniqueJobExists(StalwartError):
    """A job with this unique key is not finished yet (``job_id`` is that job)."""

    def __init__(self, message: str, job_id: int) -> None:
        self.job_id = job_id
        super().__init__(message)


class CommandNotConfigured(StalwartError):
    """A ``stalwart.command`` job names a recurring entry with no command in the loaded
    configuration: it fails without running anything."""


class DatabaseUnavailable(StalwartError):
    """The database could not be reached: what `enqueue` (and every other call that
    needs the database) raises during an outage. Nothing was written; try again later.
    (Unless the message says the commit may or may not have happened: the connection
    broke at COMMIT, so the write may be in; look before writing it again.)"""


class SchemaNotMigrated(StalwartError):
    """The database lacks Stalwart's tables or columns: run `stalwart migrate`."""


class ProcessExited(StalwartError):
    """The process running the job exited before the job finished."""


class ProcessPruned(StalwartError):
    """The process running the job stopped heartbeating and was pruned."""


class Cancelled(StalwartError):
    """A job was cancelled: while it waited (or replaced by a unique job), or while it
    ran (raised in it, as for a timeout). A cancelled job is never retried."""


class JobTimeout(StalwartError):
    """An attempt ran past its task's ``timeout``: raised in the job (an async job is
    cancelled); the attempt fails and the task's ``Retry`` decides what comes next."""


class Expired(StalwartError):
    """A job with ``expires`` was not started in time: it fails instead of running late."""


class Discarded(StalwartError):
    """Recorded on a job dropped because its concurrency limit was full
    (``Limit(on_conflict="discard")``)."""


def error_record(exc: BaseException, at: datetime | str) -> dict[str, Any]:
    """How a failed attempt (or a crash, a cancel, a discard) is kept on its job:
    the exception's class (``module.Name``; builtins by name alone), message, traceback
    (empty for an error that was recorded, not raised) and time."""
    cls = type(exc)
    name = (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )
    return {
        "class": name,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)) if exc.__traceback__ else "",
        "at": at if isinstance(at, str) else at.isoformat(),
    }


class Snooze(Exception):
    """Raise inside a task to run it again after ``seconds`` without counting an attempt."""

    def __init__(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"Snooze seconds must be >= 0, got {seconds!r}")
        self.seconds = float(seconds)
        super().__init__(f"snoozed for {seconds} s")
