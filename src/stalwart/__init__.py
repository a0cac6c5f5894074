"""Stalwart: background jobs for Python, stored in your own SQL database."""

from .app import App
from .context import CurrentAttributes, JobInfo, JobLogFilter, current_job
from .errors import (
    ConfigError,
    DatabaseUnavailable,
    JobNotFound,
    ProcessExited,
    ProcessPruned,
    SerializationError,
    Snooze,
    StalwartError,
    UniqueJobExists,
    UnknownTaskError,
)
from .tasks import JobError, JobResult, JobStatus, Limit, Retry, Task

__version__ = "0.1.0"

__all__ = [
    "App",
    "ConfigError",
    "CurrentAttributes",
    "DatabaseUnavailable",
    "JobError",
    "JobInfo",
    "JobLogFilter",
    "JobNotFound",
    "JobResult",
    "JobStatus",
    "Limit",
    "ProcessExited",
    "ProcessPruned",
    "Retry",
    "SerializationError",
    "Snooze",
    "StalwartError",
    "Task",
    "UniqueJobExists",
    "UnknownTaskError",
    "__version__",
    "current_job",
]
