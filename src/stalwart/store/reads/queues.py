"""Reads of the queues: each queue's counts by status, and the totals by status."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, func, select, text

from .. import schema as s
from ..base import StoreBase
from ..statuses import EXECUTIONS
from . import bounds
from .bounds import Estimate

__all__ = ["QueueReads", "QueueStats"]

j = s.jobs


@dataclass(frozen=True, slots=True)
class QueueStats:
    """One queue: its jobs by status (all but SUCCESSFUL, which is not counted per
    queue), whether it is paused, and since when its oldest ready job waits."""

    name: str
    waiting: int = 0
    ready: int = 0
    scheduled: int = 0
    running: int = 0
    blocked: int = 0
    failed: int = 0
    paused: bool = False
    oldest_ready_at: datetime | None = None

    def count(self, status: str) -> int:
        """Jobs of this queue in ``status``, one of `statuses.EXECUTIONS`."""
        if status not in EXECUTIONS:
            raise ValueError(f"{status!r} is not counted per queue")
        n: int = getattr(self, status.lower())
        return n

    def counts(self) -> dict[str, int]:
        """{status: jobs} for every status of `statuses.EXECUTIONS`, zeros included."""
        return {status: self.count(status) for status in EXECUTIONS}


class QueueReads(StoreBase):
    def queues_overview(self) -> list[QueueStats]:
        """Every queue with a waiting, running or failed job, paused, or named by a
        worker; by name.

        The execution tables hold only unfinished and failed jobs, so these are exact
        GROUP BY counts over them (index-only scans where the index has the queue).
        """
        return self.read(_queues_overview)

    def status_counts(self, queues: Sequence[QueueStats] | None = None) -> dict[str, Estimate]:
        """Jobs per status: exact for the execution tables (summed from ``queues``, the
        overview, when given), estimated for successful ones."""

        def body(conn: Connection) -> dict[str, Estimate]:
            qs = queues if queues is not None else _queues_overview(conn)
            out = {
                status: Estimate(sum(q.count(status) for q in qs), "exact") for status in EXECUTIONS
            }
            total = _jobs_estimate(conn, self.caps.row_estimate)
            live = sum(e.value for e in out.values())
            out["SUCCESSFUL"] = Estimate(max(total.value - live, 0), total.kind)
            return out

        return self.read(body)

    def successful_count_by_queue(self) -> dict[str, int]:
        """{queue: successful jobs}, counted exactly over `stalwart_jobs` (for the demo
        and small databases: it reads every finished row)."""
        q = select(j.c.queue_name, func.count()).where(j.c.finished_at.is_not(None))
        q = q.group_by(j.c.queue_name)
        return self.read(lambda conn: {str(k): int(v) for k, v in conn.execute(q).all()})


def _queues_overview(conn: Connection) -> list[QueueStats]:
    counts: dict[str, dict[str, Any]] = {}

    def add(q: Select[Any], status: str) -> None:
        for row in conn.execute(q).all():
            counts.setdefault(row[0], {})[status] = int(row[1])
            if status == "ready":
                counts[row[0]]["oldest_ready_at"] = row[2]

    r = s.ready_executions
    # min(job_id), not min(created_at): the GROUP BY stays an index-only scan of
    # (queue_name, priority, job_id); the oldest row's time is one lookup per queue.
    add(
        select(r.c.queue_name, func.count(), func.min(r.c.job_id)).group_by(r.c.queue_name),
        "ready",
    )
    oldest = [v["oldest_ready_at"] for v in counts.values() if "oldest_ready_at" in v]
    since = dict(
        conn.execute(select(r.c.job_id, r.c.created_at).where(r.c.job_id.in_(oldest))).all()
    )
    for v in counts.values():
        if "oldest_ready_at" in v:
            v["oldest_ready_at"] = since.get(v["oldest_ready_at"])
    for status in ("WAITING", "SCHEDULED", "BLOCKED", "FAILED"):
        t = EXECUTIONS[status].table
        add(select(t.c.queue_name, func.count()).group_by(t.c.queue_name), status.lower())
    c = EXECUTIONS["RUNNING"].table  # the claimed table has no queue column
    add(
        select(j.c.queue_name, func.count())
        .select_from(c.join(j, j.c.id == c.c.job_id))
        .group_by(j.c.queue_name),
        "running",
    )
    paused = set(conn.execute(select(s.pauses.c.queue_name)).scalars())
    # Queues workers name explicitly are listed even when empty (so they can be
    # paused before their jobs come).
    listened: set[str] = set()
    for meta in conn.execute(select(s.processes.c.metadata)).scalars():
        try:
            queues = json.loads(meta).get("queues", []) if meta else []
        except (ValueError, AttributeError):
            continue
        listened.update(q for q in queues if isinstance(q, str) and "*" not in q)
    names = sorted(set(counts) | paused | listened)
    return [QueueStats(name=n, paused=n in paused, **counts.get(n, {})) for n in names]


def _jobs_estimate(conn: Connection, style: str) -> Estimate:
    """How many rows `stalwart_jobs` holds, without counting them: ``style`` is the
    database's way to tell (`Capabilities.row_estimate`)."""
    if style == "pg_class":
        n = conn.execute(
            text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": j.name}
        ).scalar()
        # -1: never analyzed; fall through to a capped count.
        if n is not None and n >= 0:
            return Estimate(int(n), "estimate")
    elif style == "information_schema":
        n = conn.execute(
            text(
                "SELECT TABLE_ROWS FROM information_schema.TABLES"
                " WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = :t"
            ),
            {"t": j.name},
        ).scalar()
        if n is not None:
            return Estimate(int(n), "estimate")
    return bounds.capped_count(conn, select(j.c.id), bounds.COUNT_CAP * 10)
