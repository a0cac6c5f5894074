"""SQL of `stalwart_recurring_tasks` and `stalwart_recurring_executions`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from . import schema as s
from .jobs import JobsStore
from .records import NewJob

rt = s.recurring_tasks
rx = s.recurring_executions


@dataclass(frozen=True, slots=True)
class RecurringTaskRow:
    key: str
    schedule: str
    time_zone: str = "UTC"
    task_name: str | None = None
    command: str | None = None
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
    queue_name: str | None = None
    priority: int | None = None
    missed: str = "skip"
    missed_window: int = 86400
    description: str | None = None
    static: bool = True

    def values(self, now: datetime) -> dict[str, Any]:
        return {
            "key": self.key,
            "schedule": self.schedule,
            "time_zone": self.time_zone,
            "task_name": self.task_name,
            "command": self.command,
            "args": json.dumps(list(self.args)),
            "kwargs": json.dumps(self.kwargs or {}),
            "queue_name": self.queue_name,
            "priority": self.priority,
            "missed": self.missed,
            "missed_window": self.missed_window,
            "description": self.description,
            "static": self.static,
            "updated_at": now,
        }


def _row(r: Any) -> RecurringTaskRow:
    return RecurringTaskRow(
        key=r.key,
        schedule=r.schedule,
        time_zone=r.time_zone,
        task_name=r.task_name,
        command=r.command,
        args=tuple(json.loads(r.args)),
        kwargs=json.loads(r.kwargs),
        queue_name=r.queue_name,
        priority=r.priority,
        missed=r.missed,
        missed_window=int(r.missed_window),
        description=r.description,
        static=bool(r.static),
    )


class RecurringStore(JobsStore):
    def recurring_upsert(self, task: RecurringTaskRow) -> None:
        self.run(lambda conn: _upsert(conn, task, self.clock.now()))

    def recurring_sync_static(self, tasks: Sequence[RecurringTaskRow]) -> None:
        """Make the static (config-defined) tasks exactly ``tasks``; run-time ones stay."""

        def body(conn: Connection) -> None:
            now = self.clock.now()
            for task in tasks:
                _upsert(conn, task, now)
            keys = [t.key for t in tasks]
            gone = delete(rt).where(rt.c.static.is_(True))
            if keys:
                gone = gone.where(rt.c.key.not_in(keys))
            conn.execute(gone)

        self.run(body)

    def recurring_remove(self, key: str) -> bool:
        return self.run(lambda conn: conn.execute(delete(rt).where(rt.c.key == key)).rowcount > 0)

    def recurring_list(self) -> list[RecurringTaskRow]:
        q = select(rt).order_by(rt.c.key)
        return self.read(lambda conn: [_row(r) for r in conn.execute(q).all()])

    def recurring_last_runs(self) -> dict[str, datetime]:
        """The latest run time enqueued, per task key."""
        q = select(rx.c.task_key, func.max(rx.c.run_at)).group_by(rx.c.task_key)
        return self.read(lambda conn: {str(k): v for k, v in conn.execute(q).all()})

    def recurring_enqueue(self, key: str, run_at: datetime, job: NewJob) -> int | None:
        """Enqueue the run of ``key`` at ``run_at``, unless any scheduler already did:
        the (task, run time) row is unique, so of many schedulers exactly one wins."""

        def body(conn: Connection) -> int | None:
            now = self.clock.now()
            try:
                with conn.begin_nested():
                    conn.execute(insert(rx).values(task_key=key, run_at=run_at, created_at=now))
            except IntegrityError:
                return None
            [job_id] = self._insert_jobs(conn, [job], now)
            conn.execute(
                update(rx).where(rx.c.task_key == key, rx.c.run_at == run_at).values(job_id=job_id)
            )
            return job_id

        return self.run(body)


def _upsert(conn: Connection, task: RecurringTaskRow, now: datetime) -> None:
    values = task.values(now)
    changed = conn.execute(update(rt).where(rt.c.key == task.key).values(**values)).rowcount
    if changed:
        return
    try:
        with conn.begin_nested():  # another scheduler may insert it at the same moment
            conn.execute(insert(rt).values(**values, created_at=now))
    except IntegrityError:
        conn.execute(update(rt).where(rt.c.key == task.key).values(**values))
