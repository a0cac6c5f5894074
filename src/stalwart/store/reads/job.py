"""Reads of one job: where it stands, and the facts of "why isn't it running?"."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, select

from ...names import is_job_id
from .. import schema as s
from ..base import StoreBase, utcnow
from ..jobs import job_rows
from ..records import JobRow
from . import bounds
from .processes import LiveProcess, live_processes

__all__ = ["Claim", "JobDetail", "JobReads", "Semaphore", "WaitFacts", "limit_keys"]

j = s.jobs


@dataclass(frozen=True, slots=True)
class Claim:
    at: datetime
    process_id: int | None
    process_name: str | None
    hostname: str | None
    pid: int | None


@dataclass(frozen=True, slots=True)
class JobDetail:
    job: JobRow
    ready_since: datetime | None = None
    scheduled_for: datetime | None = None
    claim: Claim | None = None
    blocked_on: str | None = None
    blocked_since: datetime | None = None
    blocked_expires_at: datetime | None = None
    failed_at: datetime | None = None
    failed_error: dict[str, Any] | None = None
    # READY, but to run alone after a crash (a suspect, or blamed with crashes left).
    suspect_since: datetime | None = None
    # SCHEDULED, but in the line of a start rate, until a start frees.
    throttled_on: str | None = None
    throttled_until: datetime | None = None


@dataclass(frozen=True, slots=True)
class Semaphore:
    key: str
    value: int
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class WaitFacts:
    """What the "why isn't this job running?" panel reasons from (all read at ``now``)."""

    job_id: int
    status: str
    queue_name: str
    priority: int
    now: datetime
    paused: bool
    live: list[LiveProcess]
    scheduled_for: datetime | None = None
    blocked_on: str | None = None
    blocked_expires_at: datetime | None = None
    semaphore: Semaphore | None = None
    # Jobs holding a slot of ``blocked_on``: claimed, and ready ones (a ready job holds
    # its slots already).
    holders_running: list[int] = field(default_factory=list)
    holders_ready: list[int] = field(default_factory=list)
    # Ready jobs in the same queue that a worker takes first (capped at COUNT_CAP).
    ahead_higher: int = 0
    ahead_same: int = 0
    claim: Claim | None = None
    suspect_since: datetime | None = None
    throttled_on: str | None = None
    throttled_until: datetime | None = None
    # WAITING: the jobs it depends on, (id, task, status), the first 50.
    waiting_on: list[tuple[int, str, str]] = field(default_factory=list)


def limit_keys(job: JobRow | None = None, raw: str | None = None) -> list[str]:
    """The semaphore keys named by a job's concurrency limits (JSON list of
    {"key", "to", "duration", ...})."""
    if job is not None:
        raw = job.concurrency_limits
    if not raw:
        return []
    try:
        limits = json.loads(raw)
    except ValueError:
        return []
    if not isinstance(limits, list):
        return []
    return [str(x["key"]) for x in limits if isinstance(x, dict) and "key" in x]


class JobReads(StoreBase):
    def job_detail(self, job_id: int) -> JobDetail | None:
        """The job with the row of the execution table that holds it; None if unknown."""
        if not is_job_id(job_id):
            return None
        return self.read(lambda conn: _job_detail(conn, job_id))

    def job_wait_facts(self, job_id: int, alive_threshold: float) -> WaitFacts | None:
        """The facts that decide whether and when a job runs (see `WaitFacts`);
        processes count as live with a heartbeat in the last ``alive_threshold`` s."""
        if not is_job_id(job_id):
            return None
        return self.read(lambda conn: _wait_facts(conn, job_id, alive_threshold))


def _job_detail(conn: Connection, job_id: int) -> JobDetail | None:
    found = job_rows(conn, [job_id])
    if not found:
        return None
    job = found[0]
    extra: dict[str, Any] = {}
    if job.status == "READY":
        r, sx = s.ready_executions, s.suspect_executions
        extra["ready_since"] = conn.execute(
            select(r.c.created_at).where(r.c.job_id == job_id)
        ).scalar()
        if extra["ready_since"] is None:
            extra["suspect_since"] = conn.execute(
                select(sx.c.created_at).where(sx.c.job_id == job_id)
            ).scalar()
    elif job.status == "SCHEDULED":
        sc, th = s.scheduled_executions, s.throttled_executions
        extra["scheduled_for"] = conn.execute(
            select(sc.c.scheduled_at).where(sc.c.job_id == job_id)
        ).scalar()
        if extra["scheduled_for"] is None:
            row = conn.execute(
                select(th.c.rate_key, th.c.due_at).where(th.c.job_id == job_id)
            ).first()
            if row is not None:
                extra.update(throttled_on=row[0], throttled_until=row[1])
    elif job.status == "RUNNING":
        extra["claim"] = _claim_of(conn, job_id)
    elif job.status == "BLOCKED":
        b = s.blocked_executions
        brow = conn.execute(
            select(b.c.concurrency_key, b.c.created_at, b.c.expires_at).where(b.c.job_id == job_id)
        ).first()
        if brow is not None:
            extra.update(blocked_on=brow[0], blocked_since=brow[1], blocked_expires_at=brow[2])
    elif job.status == "FAILED":
        f = s.failed_executions
        frow = conn.execute(select(f.c.created_at, f.c.error).where(f.c.job_id == job_id)).first()
        if frow is not None:
            extra["failed_at"] = frow[0]
            try:
                extra["failed_error"] = json.loads(frow[1])
            except ValueError:
                extra["failed_error"] = {"message": frow[1]}
    return JobDetail(job=job, **extra)


def _claim_of(conn: Connection, job_id: int) -> Claim | None:
    c, pr = s.claimed_executions, s.processes
    row = conn.execute(
        select(c.c.created_at, c.c.process_id, pr.c.name, pr.c.hostname, pr.c.pid)
        .select_from(c.outerjoin(pr, pr.c.id == c.c.process_id))
        .where(c.c.job_id == job_id)
    ).first()
    if row is None:
        return None
    return Claim(row[0], row[1], row[2], row[3], row[4])


def _wait_facts(conn: Connection, job_id: int, alive_threshold: float) -> WaitFacts | None:
    detail = _job_detail(conn, job_id)
    if detail is None:
        return None
    job, now = detail.job, utcnow()
    paused = (
        conn.execute(
            select(s.pauses.c.queue_name).where(s.pauses.c.queue_name == job.queue_name)
        ).first()
        is not None
    )
    facts: dict[str, Any] = {
        "job_id": job.id,
        "status": job.status,
        "queue_name": job.queue_name,
        "priority": job.priority,
        "now": now,
        "paused": paused,
        "live": live_processes(conn, now - timedelta(seconds=alive_threshold)),
        "scheduled_for": detail.scheduled_for,
        "claim": detail.claim,
        "suspect_since": detail.suspect_since,
        "throttled_on": detail.throttled_on,
        "throttled_until": detail.throttled_until,
    }
    if job.status == "BLOCKED" and detail.blocked_on is not None:
        key = detail.blocked_on
        facts["blocked_on"] = key
        facts["blocked_expires_at"] = detail.blocked_expires_at
        sem = s.semaphores
        row = conn.execute(
            select(sem.c.key, sem.c.value, sem.c.expires_at).where(sem.c.key == key)
        ).first()
        if row is not None:
            facts["semaphore"] = Semaphore(str(row[0]), int(row[1]), row[2])
        facts["holders_running"] = _holders(conn, s.claimed_executions, key)
        facts["holders_ready"] = _holders(conn, s.ready_executions, key)
    if job.status == "READY":
        r = s.ready_executions
        same_queue = select(r.c.job_id).where(r.c.queue_name == job.queue_name)
        higher = bounds.capped_count(
            conn, same_queue.where(r.c.priority > job.priority), bounds.COUNT_CAP
        )
        same = bounds.capped_count(
            conn,
            same_queue.where(r.c.priority == job.priority, r.c.job_id < job.id),
            bounds.COUNT_CAP,
        )
        facts["ahead_higher"] = higher.value
        facts["ahead_same"] = same.value
    if job.status == "WAITING":
        d = s.job_dependencies
        deps = conn.execute(
            select(d.c.depends_on).where(d.c.job_id == job_id).order_by(d.c.depends_on).limit(50)
        ).scalars()
        rows = job_rows(conn, [int(x) for x in deps])
        facts["waiting_on"] = [(r.id, r.task_name, r.status) for r in rows]
    return WaitFacts(**facts)


def _holders(conn: Connection, table: Any, key: str, limit: int = 20) -> list[int]:
    """Jobs in ``table`` (claimed or ready) whose limits name ``key``, among its
    oldest ``SCAN_WINDOW`` rows (a ready job holds its slots only briefly)."""
    window = select(table.c.job_id).order_by(table.c.job_id).limit(bounds.SCAN_WINDOW).subquery()
    # A LIKE (bound, escaped) narrows down in SQL; the JSON decides.
    q = (
        select(j.c.id, j.c.concurrency_limits)
        .select_from(window.join(j, j.c.id == window.c.job_id))
        .where(j.c.concurrency_limits.contains(json.dumps(key), autoescape=True))
        .order_by(j.c.id)
        .limit(limit * 4)
    )
    out = [int(r[0]) for r in conn.execute(q).all() if key in limit_keys(raw=r[1])]
    return out[:limit]
