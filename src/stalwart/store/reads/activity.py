"""Reads of recent activity: a bounded sample of the jobs finished in a time window."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import literal, select, union_all

from .. import schema as s
from ..base import StoreBase

__all__ = ["ActivityReads", "FinishedSample"]

j = s.jobs


@dataclass(frozen=True, slots=True)
class FinishedSample:
    """One finished job of the activity sample: when it was due, started, finished."""

    bucket: int
    scheduled_at: datetime
    started_at: datetime | None
    finished_at: datetime


class ActivityReads(StoreBase):
    def finished_sample(
        self, since: datetime, until: datetime, buckets: int, per_bucket: int
    ) -> list[FinishedSample]:
        """Up to ``per_bucket`` finished jobs from each of ``buckets`` equal slices of
        [since, until), earliest first in each: a bounded sample for throughput and
        latency charts, one statement walking the finished_at index."""
        width = (until - since) / buckets
        parts = []
        for i in range(buckets):
            lo, hi = since + width * i, since + width * (i + 1)
            inner = (
                select(j.c.scheduled_at, j.c.started_at, j.c.finished_at)
                .where(j.c.finished_at.is_not(None), j.c.finished_at >= lo, j.c.finished_at < hi)
                .order_by(j.c.finished_at)
                .limit(per_bucket)
                .subquery()
            )
            # Each part wrapped in its own SELECT: SQLite refuses ORDER BY/LIMIT inside
            # a UNION ALL otherwise.
            parts.append(
                select(
                    literal(i).label("bucket"),
                    inner.c.scheduled_at,
                    inner.c.started_at,
                    inner.c.finished_at,
                )
            )
        q = union_all(*parts)
        return self.read(
            lambda conn: [
                FinishedSample(int(r[0]), r[1], r[2], r[3]) for r in conn.execute(q).all()
            ]
        )
