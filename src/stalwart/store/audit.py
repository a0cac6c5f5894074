"""The dashboard's audit log: `stalwart_audit_events`, one row per action taken.

Declared on the schema's own ``metadata`` so `stalwart migrate` creates it with the
other tables.
"""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, String, Table

from .schema import JobId, LongText, Timestamp, metadata

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
