"""Reads of the recurring tasks: each with its last run, and those of the
configuration that no scheduler has registered yet."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from .. import schema as s
from ..base import StoreBase
from ..recurring import RecurringTaskRow

__all__ = ["RecurringReads", "RecurringRow"]


@dataclass(frozen=True, slots=True)
class RecurringRow:
    key: str
    schedule: str
    time_zone: str
    task_name: str | None
    command: str | None
    queue_name: str | None
    priority: int | None
    description: str | None
    static: bool
    last_run_at: datetime | None
    last_job_id: int | None
    missed: str = "skip"
    # False: in the configuration given to `recurring_overview`, not in the database
    # yet (no scheduler has registered it).
    registered: bool = True


class RecurringReads(StoreBase):
    def recurring_overview(self, configured: Sequence[RecurringTaskRow] = ()) -> list[RecurringRow]:
        """Recurring tasks by key, with their last run (one index probe per task).

        ``configured``: the configuration's tasks; those not in the database are
        listed too, marked ``registered=False``. Nothing is written.
        """
        rows = self.read(_recurring_rows)
        known = {r.key for r in rows}
        rows += [_unregistered(t) for t in configured if t.key not in known]
        return sorted(rows, key=lambda r: r.key)


def _recurring_rows(conn: Connection) -> list[RecurringRow]:
    rt, rx = s.recurring_tasks, s.recurring_executions
    out = []
    for t in conn.execute(select(rt).order_by(rt.c.key)).all():
        last = conn.execute(
            select(rx.c.run_at, rx.c.job_id)
            .where(rx.c.task_key == t.key)
            .order_by(rx.c.run_at.desc())
            .limit(1)
        ).first()
        job_id = last[1] if last else None
        out.append(_row(t, last[0] if last else None, None if job_id is None else int(job_id)))
    return out


def _unregistered(t: RecurringTaskRow) -> RecurringRow:
    return _row(t, None, None, registered=False)


def _row(
    t: Any, last_run_at: datetime | None, last_job_id: int | None, registered: bool = True
) -> RecurringRow:
    """From a row of `stalwart_recurring_tasks` or a `RecurringTaskRow` (same names)."""
    return RecurringRow(
        key=t.key,
        schedule=t.schedule,
        time_zone=t.time_zone,
        task_name=t.task_name,
        command=t.command,
        queue_name=t.queue_name,
        priority=t.priority,
        description=t.description,
        static=bool(t.static),
        last_run_at=last_run_at,
        last_job_id=last_job_id,
        missed=t.missed,
        registered=registered,
    )
