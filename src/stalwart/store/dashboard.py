"""SQL of the dashboard: bounded reads over every table, and the audit log.

Every read here is bounded, whatever the size of `stalwart_jobs`: lists walk an index
in keyset order and stop after a page; filters that no index serves look at a window
of at most ``SCAN_WINDOW`` rows per page (the page then says how far it looked);
totals of the jobs table are estimates read from the database's statistics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    func,
    insert,
    literal,
    or_,
    select,
    text,
    union_all,
)

from . import schema as s
from .audit import audit_events
from .base import StoreBase, utcnow
from .jobs import job_rows
from .records import JobRow

j = s.jobs

# Rows a filtered list page looks at, at most, when no index serves the filter.
SCAN_WINDOW = 10_000
# Counts shown as "N+" past this (jobs ahead in line, capped table counts).
COUNT_CAP = 10_000

STATUSES = ("READY", "SCHEDULED", "RUNNING", "BLOCKED", "FAILED", "FINISHED")


@dataclass(frozen=True, slots=True)
class QueueStats:
    name: str
    ready: int = 0
    scheduled: int = 0
    running: int = 0
    blocked: int = 0
    failed: int = 0
    paused: bool = False
    oldest_ready_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """A row count: exact, estimated from statistics, or at least ``value``."""

    value: int
    kind: str  # "exact" | "estimate" | "at_least"


@dataclass(frozen=True, slots=True)
class FinishedSample:
    """One finished job of the activity sample: when it was due, started, finished."""

    bucket: int
    scheduled_at: datetime
    started_at: datetime | None
    finished_at: datetime


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a list shows. Every field is a bound parameter, never SQL text."""

    status: str = "FAILED"
    queue_name: str | None = None
    task_name: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status {self.status!r} is not one of {', '.join(STATUSES)}")


@dataclass(frozen=True, slots=True)
class JobListRow:
    id: int
    task_name: str
    queue_name: str
    priority: int
    args: str
    kwargs: str
    attempts: int
    enqueued_at: datetime
    # The time that matters in this status: ready since, scheduled for, claimed at,
    # blocked since, failed at, finished at.
    at: datetime | None
    error_class: str | None = None
    error_message: str | None = None
    concurrency_key: str | None = None
    process_id: int | None = None


@dataclass(frozen=True, slots=True)
class JobsPage:
    rows: list[JobListRow]
    # Opaque keyset cursor of the next page, None on the last one.
    next_cursor: str | None
    # True when a filter was applied to a bounded window that ended without filling
    # the page: the next page goes on looking further back.
    window_exhausted: bool = False


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


@dataclass(frozen=True, slots=True)
class LiveProcess:
    id: int
    kind: str
    name: str
    hostname: str
    pid: int
    metadata: dict[str, Any]
    last_heartbeat_at: datetime
    in_hand: int


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


@dataclass(frozen=True, slots=True)
class RecurringRow:
    key: str
    schedule: str
    time_zone: str
    task_name: str | None
    command: str | None
    queue_name: str | None
    priority: int | None
    description: str | None
    static: bool
    last_run_at: datetime | None
    last_job_id: int | None


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


# Status -> (execution table, its status-time column).
def _execution(status: str) -> tuple[Any, Any]:
    return {
        "READY": (s.ready_executions, s.ready_executions.c.created_at),
        "SCHEDULED": (s.scheduled_executions, s.scheduled_executions.c.scheduled_at),
        "RUNNING": (s.claimed_executions, s.claimed_executions.c.created_at),
        "BLOCKED": (s.blocked_executions, s.blocked_executions.c.created_at),
        "FAILED": (s.failed_executions, s.failed_executions.c.created_at),
    }[status]


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


class DashboardStore(StoreBase):
    # ---- overview ----

    def dashboard_queue_overview(self) -> list[QueueStats]:
        """Every queue with a waiting, running or failed job, or paused; by name.

        The execution tables hold only unfinished and failed jobs, so these are exact
        GROUP BY counts over them (index-only scans where the index has the queue).
        """
        return self.run(self._dash_queue_overview)

    def _dash_queue_overview(self, conn: Connection) -> list[QueueStats]:
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
        for status, t in (
            ("scheduled", s.scheduled_executions),
            ("blocked", s.blocked_executions),
            ("failed", s.failed_executions),
        ):
            add(select(t.c.queue_name, func.count()).group_by(t.c.queue_name), status)
        c = s.claimed_executions
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

    def dashboard_jobs_estimate(self) -> Estimate:
        """How many rows `stalwart_jobs` holds, without counting them."""
        return self.run(lambda conn: self._dash_estimate(conn, j.name))

    def _dash_estimate(self, conn: Connection, table: str) -> Estimate:
        style = self.caps.row_estimate
        if style == "pg_class":
            n = conn.execute(
                text("SELECT reltuples FROM pg_class WHERE oid = to_regclass(:t)"), {"t": table}
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
                {"t": table},
            ).scalar()
            if n is not None:
                return Estimate(int(n), "estimate")
        return self._dash_capped_count(conn, select(j.c.id), COUNT_CAP * 10)

    @staticmethod
    def _dash_capped_count(conn: Connection, q: Select[Any], cap: int) -> Estimate:
        bounded = select(func.count()).select_from(q.limit(cap + 1).subquery())
        n = int(conn.execute(bounded).scalar_one())
        return Estimate(min(n, cap), "at_least" if n > cap else "exact")

    def dashboard_finished_sample(
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
        return self.run(
            lambda conn: [
                FinishedSample(int(r[0]), r[1], r[2], r[3]) for r in conn.execute(q).all()
            ]
        )

    # ---- lists ----

    def dashboard_jobs_page(
        self, which: JobFilter, *, cursor: str | None = None, limit: int = 50
    ) -> JobsPage:
        """A page of jobs, newest first, in keyset order (``cursor`` from the last page)."""
        if which.status == "FINISHED":
            return self.run(lambda conn: self._dash_finished_page(conn, which, cursor, limit))
        return self.run(lambda conn: self._dash_execution_page(conn, which, cursor, limit))

    def _dash_execution_page(
        self, conn: Connection, which: JobFilter, cursor: str | None, limit: int
    ) -> JobsPage:
        if which.error_class is not None and which.status != "FAILED":
            return JobsPage([], None)  # only failed jobs have an error class
        t, at_col = _execution(which.status)
        key = t.c.job_id
        base = select(key)
        post: list[ColumnElement[bool]] = []  # filters no index of ``t`` serves
        if cursor is not None:
            base = base.where(key < _int_cursor(cursor))
        # The failed table has (error_class, job_id) and (queue_name, job_id) indexes:
        # an equality on one of them makes the page a keyset walk of that index.
        queue_served = False
        if which.error_class is not None:
            base = base.where(t.c.error_class == which.error_class)
        elif which.status == "FAILED" and which.queue_name is not None:
            base = base.where(t.c.queue_name == which.queue_name)
            queue_served = True
        if which.queue_name is not None and not queue_served:
            col = t.c.queue_name if "queue_name" in t.c else j.c.queue_name
            post.append(col == which.queue_name)
        if which.task_name is not None:
            post.append(j.c.task_name == which.task_name)
        if which.since is not None:
            post.append(at_col >= which.since)
        if which.until is not None:
            post.append(at_col < which.until)
        base = base.order_by(key.desc())

        if post:
            window = base.limit(SCAN_WINDOW).subquery()
            ids_q = (
                select(window.c.job_id)
                .select_from(
                    window.join(t, t.c.job_id == window.c.job_id).join(j, j.c.id == window.c.job_id)
                )
                .where(*post)
                .order_by(window.c.job_id.desc())
                .limit(limit + 1)
            )
        else:
            window = None
            ids_q = base.limit(limit + 1)
        ids = [int(i) for i in conn.execute(ids_q).scalars()]
        rows = self._dash_list_rows(conn, which.status, ids[:limit])
        if len(ids) > limit:
            return JobsPage(rows, str(ids[limit - 1]))
        if window is not None:
            # The page is not full: was it because the window ended?
            last = conn.execute(
                select(func.min(window.c.job_id), func.count()).select_from(window)
            ).one()
            if int(last[1]) >= SCAN_WINDOW:
                return JobsPage(rows, str(int(last[0])), window_exhausted=True)
        return JobsPage(rows, None)

    def _dash_finished_page(
        self, conn: Connection, which: JobFilter, cursor: str | None, limit: int
    ) -> JobsPage:
        if which.error_class is not None:
            return JobsPage([], None)  # only failed jobs have an error class
        fin = j.c.finished_at
        base = select(j.c.id, fin).where(fin.is_not(None))
        if cursor is not None:
            at, cid = _time_cursor(cursor)
            # finished_at <= at bounds the index range; the OR breaks ties by id.
            base = base.where(fin <= at, or_(fin < at, j.c.id < cid))
        if which.since is not None:
            base = base.where(fin >= which.since)
        if which.until is not None:
            base = base.where(fin < which.until)
        post: list[ColumnElement[bool]] = []
        if which.queue_name is not None:
            post.append(j.c.queue_name == which.queue_name)
        if which.task_name is not None:
            post.append(j.c.task_name == which.task_name)
        base = base.order_by(fin.desc(), j.c.id.desc())
        window = None
        if post:
            window = base.add_columns(j.c.queue_name, j.c.task_name).limit(SCAN_WINDOW).subquery()
            wpost = [
                (window.c.queue_name == which.queue_name)
                if which.queue_name is not None
                else literal(True),
                (window.c.task_name == which.task_name)
                if which.task_name is not None
                else literal(True),
            ]
            q = (
                select(window.c.id, window.c.finished_at)
                .where(*wpost)
                .order_by(window.c.finished_at.desc(), window.c.id.desc())
                .limit(limit + 1)
            )
        else:
            q = base.limit(limit + 1)
        keys = [(int(r[0]), r[1]) for r in conn.execute(q).all()]
        rows = self._dash_list_rows(conn, "FINISHED", [k[0] for k in keys[:limit]])
        if len(keys) > limit:
            last_id, last_at = keys[limit - 1]
            return JobsPage(rows, _make_time_cursor(last_at, last_id))
        if window is not None:
            edge = conn.execute(
                select(window.c.id, window.c.finished_at)
                .order_by(window.c.finished_at, window.c.id)
                .limit(1)
            ).first()
            n = conn.execute(select(func.count()).select_from(window)).scalar_one()
            if edge is not None and int(n) >= SCAN_WINDOW:
                return JobsPage(
                    rows, _make_time_cursor(edge[1], int(edge[0])), window_exhausted=True
                )
        return JobsPage(rows, None)

    def _dash_list_rows(self, conn: Connection, status: str, ids: list[int]) -> list[JobListRow]:
        if not ids:
            return []
        cols: list[Any] = [
            j.c.id,
            j.c.task_name,
            j.c.queue_name,
            j.c.priority,
            j.c.args,
            j.c.kwargs,
            j.c.attempts,
            j.c.enqueued_at,
        ]
        src: Any = j
        if status == "FINISHED":
            cols.append(j.c.finished_at.label("at"))
        else:
            t, at_col = _execution(status)
            src = j.join(t, t.c.job_id == j.c.id)
            cols.append(at_col.label("at"))
            if status == "FAILED":
                cols += [t.c.error_class, t.c.error]
            elif status == "BLOCKED":
                cols.append(t.c.concurrency_key)
            elif status == "RUNNING":
                cols.append(t.c.process_id)
        q = select(*cols).select_from(src).where(j.c.id.in_(ids))
        by_id = {int(r.id): r._mapping for r in conn.execute(q).all()}
        out = []
        for i in ids:
            m = by_id.get(i)
            if m is None:  # moved on between the two reads
                continue
            message = None
            if m.get("error"):
                try:
                    message = str(json.loads(m["error"]).get("message", ""))
                except (ValueError, AttributeError):
                    message = None
            out.append(
                JobListRow(
                    id=i,
                    task_name=m["task_name"],
                    queue_name=m["queue_name"],
                    priority=int(m["priority"]),
                    args=m["args"],
                    kwargs=m["kwargs"],
                    attempts=int(m["attempts"]),
                    enqueued_at=m["enqueued_at"],
                    at=m["at"],
                    error_class=m.get("error_class"),
                    error_message=message,
                    concurrency_key=m.get("concurrency_key"),
                    process_id=m.get("process_id"),
                )
            )
        return out

    def dashboard_status_counts(
        self, queues: Sequence[QueueStats] | None = None
    ) -> dict[str, Estimate]:
        """Jobs per status: exact for the execution tables (summed from ``queues``, the
        overview, when given), estimated for finished ones."""

        def body(conn: Connection) -> dict[str, Estimate]:
            qs = queues if queues is not None else self._dash_queue_overview(conn)
            out = {
                status.upper(): Estimate(sum(getattr(q, status) for q in qs), "exact")
                for status in ("ready", "scheduled", "running", "blocked", "failed")
            }
            total = self._dash_estimate(conn, j.name)
            live = sum(e.value for e in out.values())
            out["FINISHED"] = Estimate(max(total.value - live, 0), total.kind)
            return out

        return self.run(body)

    def dashboard_failed_classes(self, limit: int = 20) -> list[tuple[str, int]]:
        """The most common error classes of failed jobs, with counts."""
        f = s.failed_executions
        n = func.count().label("n")
        q = select(f.c.error_class, n).group_by(f.c.error_class).order_by(n.desc()).limit(limit)
        return self.run(lambda conn: [(str(r[0]), int(r[1])) for r in conn.execute(q).all()])

    # ---- one job ----

    def dashboard_job_detail(self, job_id: int) -> JobDetail | None:
        return self.run(lambda conn: self._dash_job_detail(conn, job_id))

    def _dash_job_detail(self, conn: Connection, job_id: int) -> JobDetail | None:
        found = job_rows(conn, [job_id])
        if not found:
            return None
        job = found[0]
        extra: dict[str, Any] = {}
        if job.status == "READY":
            r = s.ready_executions
            extra["ready_since"] = conn.execute(
                select(r.c.created_at).where(r.c.job_id == job_id)
            ).scalar()
        elif job.status == "SCHEDULED":
            sc = s.scheduled_executions
            extra["scheduled_for"] = conn.execute(
                select(sc.c.scheduled_at).where(sc.c.job_id == job_id)
            ).scalar()
        elif job.status == "RUNNING":
            extra["claim"] = self._dash_claim(conn, job_id)
        elif job.status == "BLOCKED":
            b = s.blocked_executions
            row = conn.execute(
                select(b.c.concurrency_key, b.c.created_at, b.c.expires_at).where(
                    b.c.job_id == job_id
                )
            ).first()
            if row is not None:
                extra.update(blocked_on=row[0], blocked_since=row[1], blocked_expires_at=row[2])
        elif job.status == "FAILED":
            f = s.failed_executions
            frow = conn.execute(
                select(f.c.created_at, f.c.error).where(f.c.job_id == job_id)
            ).first()
            if frow is not None:
                extra["failed_at"] = frow[0]
                try:
                    extra["failed_error"] = json.loads(frow[1])
                except ValueError:
                    extra["failed_error"] = {"message": frow[1]}
        return JobDetail(job=job, **extra)

    @staticmethod
    def _dash_claim(conn: Connection, job_id: int) -> Claim | None:
        c, pr = s.claimed_executions, s.processes
        row = conn.execute(
            select(c.c.created_at, c.c.process_id, pr.c.name, pr.c.hostname, pr.c.pid)
            .select_from(c.outerjoin(pr, pr.c.id == c.c.process_id))
            .where(c.c.job_id == job_id)
        ).first()
        if row is None:
            return None
        return Claim(row[0], row[1], row[2], row[3], row[4])

    def dashboard_why_waiting(self, job_id: int, alive_threshold: float) -> WaitFacts | None:
        """The facts that decide whether and when a job runs (see `WaitFacts`)."""
        return self.run(lambda conn: self._dash_why(conn, job_id, alive_threshold))

    def _dash_why(self, conn: Connection, job_id: int, alive_threshold: float) -> WaitFacts | None:
        detail = self._dash_job_detail(conn, job_id)
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
            "live": self._dash_live_processes(conn, now - timedelta(seconds=alive_threshold)),
            "scheduled_for": detail.scheduled_for,
            "claim": detail.claim,
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
            facts["holders_running"] = self._dash_holders(conn, s.claimed_executions, key)
            facts["holders_ready"] = self._dash_holders(conn, s.ready_executions, key)
        if job.status == "READY":
            r = s.ready_executions
            same_queue = select(r.c.job_id).where(r.c.queue_name == job.queue_name)
            higher = self._dash_capped_count(
                conn, same_queue.where(r.c.priority > job.priority), COUNT_CAP
            )
            same = self._dash_capped_count(
                conn,
                same_queue.where(r.c.priority == job.priority, r.c.job_id < job.id),
                COUNT_CAP,
            )
            facts["ahead_higher"] = higher.value
            facts["ahead_same"] = same.value
        return WaitFacts(**facts)

    @staticmethod
    def _dash_holders(conn: Connection, table: Any, key: str, limit: int = 20) -> list[int]:
        """Jobs in ``table`` (claimed or ready) whose limits name ``key``, among its
        oldest ``SCAN_WINDOW`` rows (a ready job holds its slots only briefly)."""
        window = select(table.c.job_id).order_by(table.c.job_id).limit(SCAN_WINDOW).subquery()
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

    @staticmethod
    def _dash_live_processes(conn: Connection, alive_since: datetime) -> list[LiveProcess]:
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

    # ---- recurring tasks ----

    def dashboard_recurring(self) -> list[RecurringRow]:
        """Recurring tasks with their last run (one index probe per task)."""
        return self.run(self._dash_recurring)

    def _dash_recurring(self, conn: Connection) -> list[RecurringRow]:
        rt, rx = s.recurring_tasks, s.recurring_executions
        out = []
        for t in conn.execute(select(rt).order_by(rt.c.key)).mappings():
            last = conn.execute(
                select(rx.c.run_at, rx.c.job_id)
                .where(rx.c.task_key == t["key"])
                .order_by(rx.c.run_at.desc())
                .limit(1)
            ).first()
            out.append(
                RecurringRow(
                    key=t["key"],
                    schedule=t["schedule"],
                    time_zone=t["time_zone"],
                    task_name=t["task_name"],
                    command=t["command"],
                    queue_name=t["queue_name"],
                    priority=t["priority"],
                    description=t["description"],
                    static=bool(t["static"]),
                    last_run_at=last[0] if last else None,
                    last_job_id=int(last[1]) if last and last[1] is not None else None,
                )
            )
        return out

    # ---- audit log ----

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


def _int_cursor(cursor: str) -> int:
    try:
        return int(cursor)
    except ValueError:
        raise ValueError(f"bad cursor {cursor!r}") from None


def _make_time_cursor(at: datetime, job_id: int) -> str:
    return f"{at.isoformat()}_{job_id}"


def _time_cursor(cursor: str) -> tuple[datetime, int]:
    at, sep, job_id = cursor.rpartition("_")
    try:
        if not sep:
            raise ValueError
        return datetime.fromisoformat(at), int(job_id)
    except ValueError:
        raise ValueError(f"bad cursor {cursor!r}") from None


__all__ = [
    "COUNT_CAP",
    "SCAN_WINDOW",
    "STATUSES",
    "AuditEvent",
    "Claim",
    "DashboardStore",
    "Estimate",
    "FinishedSample",
    "JobDetail",
    "JobFilter",
    "JobListRow",
    "JobsPage",
    "LiveProcess",
    "QueueStats",
    "RecurringRow",
    "Semaphore",
    "WaitFacts",
]
