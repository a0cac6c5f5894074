"""A job's history: what happened to it besides its attempts (handed back at a
shutdown, suspected in a crash, run alone, cancel asked), as a JSON list on its row.
Written rarely, so each entry is a read and a write of the job's row."""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, select, update

from . import schema as s
from .base import utcnow

j = s.jobs
# The most entries a job keeps (the oldest go first): a job handed back at every deploy
# for a year must not grow without end.
MAX_ENTRIES = 50


def add_history(conn: Connection, job_ids: Sequence[int], event: str, detail: str) -> None:
    """Append ``{"at", "event", "detail"}`` to the history of each job."""
    if not job_ids:
        return
    at = utcnow().isoformat()
    rows = conn.execute(select(j.c.id, j.c.history).where(j.c.id.in_(list(job_ids)))).all()
    for job_id, text in rows:
        entries = json.loads(text) if text else []
        entries.append({"at": at, "event": event, "detail": detail})
        conn.execute(
            update(j)
            .where(j.c.id == job_id)
            .values(history=json.dumps(entries[-MAX_ENTRIES:], ensure_ascii=False))
        )
