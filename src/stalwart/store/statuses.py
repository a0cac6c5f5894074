"""The statuses of a job, and the table that holds the jobs of each.

One list and one map for every read of the store (the front ends' lists and counts,
the engine's counts). A job is in exactly one status:

- WAITING (for its dependencies), READY, SCHEDULED, RUNNING, BLOCKED, FAILED: it has
  a row in that status's execution table (`EXECUTIONS`); RUNNING is the claimed table.
- SUCCESSFUL: it has none; its row of ``stalwart_jobs`` has ``finished_at`` set.

The names are those of `stalwart.JobStatus`. People may type a status in either case,
and ``finished`` for SUCCESSFUL (`ALIASES`), as the dashboard and the command line
called it before.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from sqlalchemy import Column, Table

from . import schema as s

__all__ = ["ALIASES", "EXECUTIONS", "STATUSES", "Execution", "status_named"]

# In the order the front ends show them: waiting, running, then ended.
STATUSES: tuple[str, ...] = (
    "WAITING",
    "READY",
    "SCHEDULED",
    "RUNNING",
    "BLOCKED",
    "FAILED",
    "SUCCESSFUL",
)

# Other names accepted for a status, where a person types one (URLs, command line).
ALIASES: dict[str, str] = {"FINISHED": "SUCCESSFUL"}


class Execution(NamedTuple):
    """Where the jobs of one status are: their table, and the column saying since when
    (ready since, scheduled for, claimed at, blocked since, failed at)."""

    table: Table
    at: Column[Any]


# Every status but SUCCESSFUL, in the order of `STATUSES`.
EXECUTIONS: dict[str, Execution] = {
    "WAITING": Execution(s.waiting_executions, s.waiting_executions.c.created_at),
    "READY": Execution(s.ready_executions, s.ready_executions.c.created_at),
    "SCHEDULED": Execution(s.scheduled_executions, s.scheduled_executions.c.scheduled_at),
    "RUNNING": Execution(s.claimed_executions, s.claimed_executions.c.created_at),
    "BLOCKED": Execution(s.blocked_executions, s.blocked_executions.c.created_at),
    "FAILED": Execution(s.failed_executions, s.failed_executions.c.created_at),
}


def status_named(name: str) -> str:
    """The status a person named (``failed``, ``Finished``), as one of `STATUSES`.

    Raises ValueError, listing the statuses, for any other name.
    """
    status = name.strip().upper()
    status = ALIASES.get(status, status)
    if status not in STATUSES:
        choices = ", ".join(x.lower() for x in STATUSES)
        raise ValueError(f"status must be one of {choices}")
    return status
