"""SQL of `stalwart_semaphores` and `stalwart_blocked_executions`: concurrency limits.

A job with limits holds one slot of each of its semaphores from the moment it becomes
ready until it leaves the claimed state for good (finished, failed, or waiting for a
retry). A job that cannot get every slot is blocked on the key it could not get, and
is unblocked — in priority, then FIFO order — when a slot is released or the semaphore
expires (`duration` after it was last taken: the safety valve for holders that died).

Every operation touches the rows of its own keys only (row locks, no table locks), so
many keys never contend and one hot key serializes only its own jobs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..errors import Discarded, error_record
from . import schema as s
from .base import StoreBase

sem = s.semaphores
blk = s.blocked_executions


@dataclass(frozen=True, slots=True)
class Waiting:
    """A job about to become ready: what the acquire step needs of it."""

    job_id: int
    queue_name: str
    priority: int
    limits: str | None  # JSON, as stored in stalwart_jobs.concurrency_limits


def parse_limits(text: str | None) -> list[dict[str, Any]]:
    return json.loads(text) if text else []


def _take(conn: Connection, limit: dict[str, Any], now: datetime) -> bool:
    """Take one slot of a semaphore; False if none is free."""
    expires = now + timedelta(seconds=float(limit["duration"]))
    taken = conn.execute(
        update(sem)
        .where(sem.c.key == limit["key"], sem.c.value > 0)
        .values(value=sem.c.value - 1, expires_at=expires)
    ).rowcount
    if taken:
        return True
    exists = conn.execute(select(sem.c.key).where(sem.c.key == limit["key"])).first()
    if exists is not None:
        return False
    try:
        with conn.begin_nested():  # another process may create the row at the same time
            conn.execute(
                insert(sem).values(
                    key=limit["key"],
                    value=int(limit["to"]) - 1,
                    expires_at=expires,
                    created_at=now,
                )
            )
        return True
    except IntegrityError:
        return _take(conn, limit, now)


def _give(conn: Connection, limit: dict[str, Any]) -> None:
    """Return one slot (never above the limit: an expired, recreated row may be full)."""
    conn.execute(
        update(sem)
        .where(sem.c.key == limit["key"], sem.c.value < int(limit["to"]))
        .values(value=sem.c.value + 1)
    )


def acquire_all(conn: Connection, limits: list[dict[str, Any]], now: datetime) -> str | None:
    """Take a slot of every semaphore, or none: returns the key that was full, or None."""
    taken: list[dict[str, Any]] = []
    for limit in limits:
        if not _take(conn, limit, now):
            for got in taken:
                _give(conn, got)
            return str(limit["key"])
        taken.append(limit)
    return None


def make_ready(conn: Connection, jobs: Sequence[Waiting], now: datetime) -> list[int]:
    """Put jobs in ready — or, for jobs over a concurrency limit, in blocked (or failed,
    for a limit with on_conflict="discard"). Returns the ids of the jobs discarded (they
    ended: their batch and dependents must hear of it, `flow.settle`)."""
    at = now
    ready: list[dict[str, Any]] = []
    discarded: list[int] = []
    for job in jobs:
        limits = parse_limits(job.limits)
        full = acquire_all(conn, limits, at) if limits else None
        if full is None:
            ready.append(
                {
                    "job_id": job.job_id,
                    "queue_name": job.queue_name,
                    "priority": job.priority,
                    "created_at": at,
                }
            )
            continue
        limit = next(x for x in limits if x["key"] == full)
        if limit.get("on_conflict") == "discard":
            _discard(conn, job, full, at)
            discarded.append(job.job_id)
            continue
        conn.execute(
            insert(blk).values(
                job_id=job.job_id,
                queue_name=job.queue_name,
                priority=job.priority,
                concurrency_key=full,
                expires_at=at + timedelta(seconds=float(limit["duration"])),
                created_at=at,
            )
        )
    if ready:
        conn.execute(insert(s.ready_executions), ready)
    return discarded


def _discard(conn: Connection, job: Waiting, key: str, now: datetime) -> None:
    reason = f"discarded: the concurrency limit of {key!r} was full (on_conflict='discard')"
    error = error_record(Discarded(reason), now)
    conn.execute(update(s.jobs).where(s.jobs.c.id == job.job_id).values(errors=json.dumps([error])))
    conn.execute(
        insert(s.failed_executions).values(
            job_id=job.job_id,
            queue_name=job.queue_name,
            error_class=error["class"],
            error=json.dumps(error),
            created_at=now,
        )
    )


def release(conn: Connection, limits_texts: Sequence[str | None], now: datetime) -> None:
    """Give back the slots of jobs leaving claimed, then unblock who can run now."""
    at = now
    keys: list[str] = []
    for text in limits_texts:
        for limit in parse_limits(text):
            _give(conn, limit)
            keys.append(str(limit["key"]))
    for key in dict.fromkeys(keys):
        unblock(conn, key, at)


def unblock(conn: Connection, key: str, now: datetime, most: int = 100) -> int:
    """Move blocked jobs of ``key`` to ready while slots are free: priority, then FIFO."""
    moved = 0
    while moved < most:
        q = (
            select(blk.c.job_id, blk.c.queue_name, blk.c.priority, s.jobs.c.concurrency_limits)
            .select_from(blk.join(s.jobs, s.jobs.c.id == blk.c.job_id))
            .where(blk.c.concurrency_key == key)
            .order_by(blk.c.priority.desc(), blk.c.job_id)
            .limit(1)
        )
        row = conn.execute(q).first()
        if row is None:
            return moved
        limits = parse_limits(row.concurrency_limits)
        full = acquire_all(conn, limits, now)
        if full == key:
            return moved  # still no slot for this key
        if full is not None:
            # Got this key but another limit is full: wait on that one instead.
            limit = next(x for x in limits if x["key"] == full)
            conn.execute(
                update(blk)
                .where(blk.c.job_id == row.job_id)
                .values(
                    concurrency_key=full,
                    expires_at=now + timedelta(seconds=float(limit["duration"])),
                )
            )
            continue
        conn.execute(delete(blk).where(blk.c.job_id == row.job_id))
        conn.execute(
            insert(s.ready_executions).values(
                job_id=row.job_id,
                queue_name=row.queue_name,
                priority=row.priority,
                created_at=now,
            )
        )
        moved += 1
    return moved


class SemaphoresStore(StoreBase):
    def semaphores_maintain(self, batch_size: int = 500) -> tuple[int, int]:
        """Expire semaphores past their time and unblock the jobs that can run now;
        returns (semaphores expired, jobs unblocked)."""
        now = self.clock.now()

        def expire(conn: Connection) -> list[str]:
            keys = [
                str(k)
                for k in conn.execute(
                    select(sem.c.key).where(sem.c.expires_at < now).limit(batch_size)
                ).scalars()
            ]
            if keys:
                conn.execute(delete(sem).where(sem.c.key.in_(keys), sem.c.expires_at < now))
            return keys

        expired = self.run(expire)
        # Keys with blocked jobs whose wait is over, or whose semaphore just expired.
        due = self.run(
            lambda conn: [
                str(k)
                for k in conn.execute(
                    select(blk.c.concurrency_key)
                    .where(blk.c.expires_at <= now)
                    .group_by(blk.c.concurrency_key)
                    .limit(batch_size)
                ).scalars()
            ]
        )
        unblocked = 0
        for key in dict.fromkeys([*expired, *due]):
            unblocked += self.run(partial(self._unblock_or_wait, key=key, now=now))
        return len(expired), unblocked

    def _unblock_or_wait(self, conn: Connection, *, key: str, now: datetime) -> int:
        moved = unblock(conn, key, now)
        # Those still blocked wait another `duration` before the next look.
        rows = conn.execute(
            select(blk.c.job_id, s.jobs.c.concurrency_limits)
            .select_from(blk.join(s.jobs, s.jobs.c.id == blk.c.job_id))
            .where(blk.c.concurrency_key == key, blk.c.expires_at <= now)
        ).all()
        for row in rows:
            limit = next((x for x in parse_limits(row.concurrency_limits) if x["key"] == key), None)
            wait = float(limit["duration"]) if limit else 60.0
            conn.execute(
                update(blk)
                .where(blk.c.job_id == row.job_id)
                .values(expires_at=now + timedelta(seconds=wait))
            )
        return moved
