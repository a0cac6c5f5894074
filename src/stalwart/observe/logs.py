"""Logs an operator can read and a machine can parse.

- `configure_logging(level, fmt)`: the handler of the `stalwart` command, text or JSON
  (one object per line: ``time``, ``level``, ``logger``, ``message``, the record's
  extra fields such as ``job_id``, and ``exception`` with the traceback).
- `log_attempt`: one line per attempt when it ends, with ``job_id``, ``task_name``,
  ``queue_name``, ``attempt``, ``duration`` (seconds) and ``outcome`` as fields: INFO
  for most, WARNING with the exception for a failure that will be retried (and a
  cancel), ERROR with the exception for a final failure.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any

__all__ = ["TEXT_FORMAT", "JsonFormatter", "configure_logging", "log_attempt"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
log = logging.getLogger("stalwart.jobs")

# Attributes every LogRecord has: anything else on a record is an extra field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; times in ISO 8601 with their offset (UTC)."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            data["exception"] = record.exc_text
        if record.stack_info:
            data["stack"] = self.formatStack(record.stack_info)
        return json.dumps(data, default=str, ensure_ascii=False)


def configure_logging(level: str, fmt: str = "text") -> None:
    """Log to stderr at ``level`` as ``fmt`` ("text" or "json"), replacing the handler
    an earlier call installed (the command line sets it up, then `start` may change
    it from the config)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_stalwart", False):
            root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler._stalwart = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    root.addHandler(handler)
    root.setLevel(level.upper())


# How loud each outcome is, and whether its exception goes with it.
_LEVELS = {
    "succeeded": (logging.INFO, False),
    "discarded": (logging.INFO, False),
    "snoozed": (logging.INFO, False),
    "throttled": (logging.DEBUG, False),
    "retried": (logging.WARNING, True),
    "timeout": (logging.WARNING, True),
    "cancelled": (logging.WARNING, False),
    "failed": (logging.ERROR, True),
    "crashed": (logging.WARNING, False),
}


def log_attempt(
    job_id: int,
    task_name: str,
    queue_name: str,
    attempt: int | None,
    outcome: str,
    duration: float | None,
    error: BaseException | None = None,
    detail: str = "",
    final: bool = True,
) -> None:
    """The one line of an attempt that ended (``final``: no retry follows)."""
    level, with_exc = _LEVELS.get(outcome, (logging.INFO, False))
    if outcome == "timeout" and final:
        level = logging.ERROR
    if not log.isEnabledFor(level):
        return
    took = "" if duration is None else f" in {duration:.3f} s"
    why = f": {detail}" if detail else ""
    log.log(
        level,
        "job %s (%s) on queue %s, attempt %s: %s%s%s",
        job_id,
        task_name,
        queue_name,
        attempt,
        outcome,
        took,
        why,
        exc_info=error if with_exc and error is not None else None,
        extra={
            "job_id": job_id,
            "task_name": task_name,
            "queue_name": queue_name,
            "attempt": attempt,
            "duration": None if duration is None else round(duration, 6),
            "outcome": outcome,
        },
    )
