"""Reads for operators' tools: is the database there (`database_ping`), how many live
processes of each kind (`processes_by_kind`), and whether a queue name was ever used
(`queue_known`, to catch a typo in `stalwart queues pause`). Each is a probe of an
index or a small table, cheap enough for every scrape."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import Connection, func, select, text

from .. import schema as s
from ..base import StoreBase
from ..statuses import EXECUTIONS

__all__ = ["RECENT_JOBS", "FleetReads"]

# `queue_known` looks at most at this many of the newest jobs (the jobs table has no
# index on the queue).
RECENT_JOBS = 100_000


class FleetReads(StoreBase):
    def database_ping(self) -> None:
        """One round trip; raises if the database cannot answer."""
        self.read(lambda conn: conn.execute(text("SELECT 1")).scalar())

    def processes_by_kind(self, alive_threshold: float) -> dict[str, int]:
        """Processes with a heartbeat within ``alive_threshold`` seconds, by kind."""
        pr = s.processes
        since = self.clock.now() - timedelta(seconds=alive_threshold)
        q = (
            select(pr.c.kind, func.count())
            .where(pr.c.last_heartbeat_at >= since)
            .group_by(pr.c.kind)
        )
        return self.read(lambda conn: {str(k): int(n) for k, n in conn.execute(q).all()})

    def queue_known(self, queue: str) -> bool:
        """Whether ``queue`` is paused, holds a waiting, running or failed job, is named
        by a live process (a worker's queue list), or is the queue of one of the newest
        `RECENT_JOBS` jobs."""
        return self.read(lambda conn: _queue_known(conn, queue))


def _queue_known(conn: Connection, queue: str) -> bool:
    tables = [
        s.pauses,
        *(EXECUTIONS[st].table for st in ("READY", "SCHEDULED", "BLOCKED", "FAILED")),
    ]
    for table in tables:
        if conn.execute(
            select(table.c.queue_name).where(table.c.queue_name == queue).limit(1)
        ).first():
            return True
    for meta in conn.execute(select(s.processes.c.metadata)).scalars():
        try:
            queues = json.loads(meta).get("queues", []) if meta else []
        except (ValueError, AttributeError):
            continue
        if queue in queues:
            return True
    j = s.jobs
    newest = conn.execute(select(func.max(j.c.id))).scalar()
    if newest is None:
        return False
    recent = select(j.c.id).where(j.c.id > newest - RECENT_JOBS, j.c.queue_name == queue)
    return conn.execute(recent.limit(1)).first() is not None
