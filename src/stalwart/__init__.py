"""Stalwart: background jobs for Python, stored in your own SQL database."""

from .collector import paused

with paused():  # see collector.py: start-up
    from .app import App
    from .context import CurrentAttributes, JobInfo, JobLogFilter, current_job
    from .errors import (
        BatchNotFound,
        Cancelled,
        ConfigError,
        DatabaseUnavailable,
        DependencyFailed,
        DependencyNotFound,
        Expired,
        JobNotFound,
        JobTimeout,
        ProcessExited,
        ProcessPruned,
        SerializationError,
        Snooze,
        StalwartError,
        UniqueJobExists,
        UnknownTaskError,
    )
    from .policies import Limit, Rate, Retry
    from .results import JobError, JobEvent, JobResult, JobStatus
    from .tasks import PreparedJob, Task
    from .workflows import Batch, BatchCallback, BatchResult, BatchStatus

__version__ = "0.1.0"

__all__ = [
    "App",
    "Batch",
    "BatchCallback",
    "BatchNotFound",
    "BatchResult",
    "BatchStatus",
    "Cancelled",
    "ConfigError",
    "CurrentAttributes",
    "DatabaseUnavailable",
    "DependencyFailed",
    "DependencyNotFound",
    "Expired",
    "JobError",
    "JobEvent",
    "JobInfo",
    "JobLogFilter",
    "JobNotFound",
    "JobResult",
    "JobStatus",
    "JobTimeout",
    "Limit",
    "PreparedJob",
    "ProcessExited",
    "ProcessPruned",
    "Rate",
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
