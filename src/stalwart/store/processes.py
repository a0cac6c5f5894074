"""SQL of `stalwart_processes`: registration, heartbeats, pruning the dead."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, insert, select, update

from . import schema as s
from .base import StoreBase, inserted_id

pr = s.processes


@dataclass(frozen=True, slots=True)
class ProcessRow:
    id: int
    kind: str
    name: str
    pid: int
    hostname: str
    supervisor_id: int | None
    metadata: dict[str, Any]
    last_heartbeat_at: datetime
    created_at: datetime
    # Seconds this host's clock is behind the database's (negative: ahead), as last
    # measured; None for a row written before clocks were measured.
    clock_offset: float | None = None


class ProcessesStore(StoreBase):
    def process_register(
        self,
        *,
        kind: str,
        name: str,
        pid: int,
        hostname: str,
        supervisor_id: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        now = self.clock.now()
        row = {
            "kind": kind,
            "name": name,
            "pid": pid,
            "hostname": hostname,
            "supervisor_id": supervisor_id,
            "metadata": json.dumps(metadata or {}),
            "last_heartbeat_at": now,
            "created_at": now,
            "clock_offset": self.clock.offset,
        }
        return self.run(lambda conn: inserted_id(conn.execute(insert(pr), row)))

    def process_heartbeat(self, process_id: int) -> bool:
        """Record a heartbeat (and this host's clock offset); False if the row is gone
        (we were pruned as dead). In a transaction, not on the autocommit engine: on
        MySQL, switching a pooled connection to autocommit is a round trip whose
        failure after a server restart escapes as a raw driver error."""
        q = (
            update(pr)
            .where(pr.c.id == process_id)
            .values(last_heartbeat_at=self.clock.now(), clock_offset=self.clock.offset)
        )
        return self.run(lambda conn: conn.execute(q).rowcount > 0)

    def process_deregister(self, process_id: int) -> None:
        self.run(lambda conn: conn.execute(delete(pr).where(pr.c.id == process_id)))

    def processes_list(self) -> list[ProcessRow]:
        q = select(pr).order_by(pr.c.hostname, pr.c.id)
        return self.read(lambda conn: [_row(r) for r in conn.execute(q).mappings()])

    def processes_stale(self, alive_threshold: timedelta) -> list[ProcessRow]:
        cutoff = self.clock.now() - alive_threshold
        q = select(pr).where(pr.c.last_heartbeat_at < cutoff).order_by(pr.c.id)
        return self.read(lambda conn: [_row(r) for r in conn.execute(q).mappings()])

    def process_by_name(self, name: str) -> ProcessRow | None:
        q = select(pr).where(pr.c.name == name)
        return self.read(lambda conn: next((_row(r) for r in conn.execute(q).mappings()), None))


def _row(r: Any) -> ProcessRow:
    return ProcessRow(
        id=int(r["id"]),
        kind=r["kind"],
        name=r["name"],
        pid=int(r["pid"]),
        hostname=r["hostname"],
        supervisor_id=r["supervisor_id"],
        metadata=json.loads(r["metadata"]) if r["metadata"] else {},
        last_heartbeat_at=r["last_heartbeat_at"],
        created_at=r["created_at"],
        clock_offset=None if r["clock_offset"] is None else float(r["clock_offset"]),
    )
