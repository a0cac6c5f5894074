"""Reads of the processes: the live ones with the jobs in their hands."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, func, select

from .. import schema as s
from ..base import StoreBase

__all__ = ["LiveProcess", "ProcessReads", "live_processes"]


@dataclass(frozen=True, slots=True)
class LiveProcess:
    id: int
    kind: str
    name: str
    hostname: str
    pid: int
    metadata: dict[str, Any]
    last_heartbeat_at: datetime
    in_hand: int  # jobs it has claimed


class ProcessReads(StoreBase):
    def claimed_with_process(self) -> list[tuple[int, int | None, int | None, str | None]]:
        """(job id, process id, pid, process name) of every claimed job."""
        c, pr = s.claimed_executions, s.processes
        q = (
            select(c.c.job_id, c.c.process_id, pr.c.pid, pr.c.name)
            .select_from(c.outerjoin(pr, pr.c.id == c.c.process_id))
            .order_by(c.c.job_id)
        )
        rows = self.read(lambda conn: conn.execute(q).all())
        return [(int(r[0]), r[1], r[2], r[3]) for r in rows]


def live_processes(conn: Connection, alive_since: datetime) -> list[LiveProcess]:
    """The processes with a heartbeat since ``alive_since``, with their jobs in hand."""
    pr, c = s.processes, s.claimed_executions
    in_hand: dict[Any, int] = dict(
        conn.execute(select(c.c.process_id, func.count()).group_by(c.c.process_id)).all()
    )
    rows = conn.execute(
        select(pr).where(pr.c.last_heartbeat_at >= alive_since).order_by(pr.c.id)
    ).mappings()
    out = []
    for r in rows:
        try:
            meta = json.loads(r["metadata"]) if r["metadata"] else {}
        except ValueError:
            meta = {}
        out.append(
            LiveProcess(
                id=int(r["id"]),
                kind=r["kind"],
                name=r["name"],
                hostname=r["hostname"],
                pid=int(r["pid"]),
                metadata=meta if isinstance(meta, dict) else {},
                last_heartbeat_at=r["last_heartbeat_at"],
                in_hand=int(in_hand.get(r["id"], 0)),
            )
        )
    return out
