"""The dashboard's audit log: `stalwart_audit_events`, one row per action taken, and
its two verbs (`audit_record`, `audit_page`).

The table is declared on the schema's own ``metadata`` so `stalwart migrate` creates it
with the other tables.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Column, Index, Integer, String, Table, insert, select

from .base import StoreBase, utcnow
from .schema import JobId, LongText, Timestamp, metadata

__all__ = ["AuditEvent", "AuditStore", "audit_events"]

audit_events = Table(
    "stalwart_audit_events",
    metadata,
    Column("id", JobId, primary_key=True, autoincrement=True),
    Column("created_at", Timestamp, nullable=False),
    # Who: the principal's name as the dashboard's authorizer gave it.
    Column("actor", String(255), nullable=False),
    # The resolved client IP (ClientIPMiddleware), not necessarily the TCP peer.
    Column("client_ip", String(64), nullable=True),
    Column("action", String(64), nullable=False),
    # What the action was applied to besides jobs: a queue, a recurring task, a filter.
    Column("target", String(255), nullable=True),
    # JSON list of the job ids acted on (empty for queue and filter actions).
    Column("job_ids", LongText, nullable=True),
    # How many rows the action changed.
    Column("affected", Integer, nullable=False, default=0),
    # Time-range reads ("what happened yesterday"); the page itself walks the id.
    Index("ix_stalwart_audit_events_created_at", "created_at"),
)


@dataclass(frozen=True, slots=True)
class AuditEvent:
    id: int
    created_at: datetime
    actor: str
    client_ip: str | None
    action: str
    target: str | None
    job_ids: list[int]
    affected: int


class AuditStore(StoreBase):
    def audit_record(
        self,
        *,
        actor: str,
        client_ip: str | None,
        action: str,
        target: str | None = None,
        job_ids: Sequence[int] = (),
        affected: int = 0,
    ) -> int:
        """Write one event (values cut to their column's size); returns its id."""
        row = {
            "created_at": utcnow(),
            "actor": actor[:255],
            "client_ip": client_ip[:64] if client_ip else None,
            "action": action[:64],
            "target": target[:255] if target else None,
            "job_ids": json.dumps([int(i) for i in job_ids]),
            "affected": affected,
        }
        result = self.run(lambda conn: conn.execute(insert(audit_events), row))
        key = result.inserted_primary_key
        return int(key[0]) if key else 0

    def audit_page(self, *, before_id: int | None = None, limit: int = 50) -> list[AuditEvent]:
        """Audit events, newest first (keyset on the id)."""
        a = audit_events
        q = select(a).order_by(a.c.id.desc()).limit(limit)
        if before_id is not None:
            q = q.where(a.c.id < before_id)
        return self.run(
            lambda conn: [
                AuditEvent(
                    id=int(r["id"]),
                    created_at=r["created_at"],
                    actor=r["actor"],
                    client_ip=r["client_ip"],
                    action=r["action"],
                    target=r["target"],
                    job_ids=json.loads(r["job_ids"]) if r["job_ids"] else [],
                    affected=int(r["affected"]),
                )
                for r in conn.execute(q).mappings()
            ]
        )
