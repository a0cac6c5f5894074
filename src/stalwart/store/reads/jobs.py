"""Reads of job lists: a page of the jobs in one status, newest first, filtered."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, literal, or_, select

from ...names import parse_job_id, parse_time
from .. import schema as s
from ..base import StoreBase
from ..statuses import EXECUTIONS, STATUSES
from . import bounds

__all__ = ["JobFilter", "JobListReads", "JobListRow", "JobsPage"]

j = s.jobs


@dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs a list shows. Every field is a bound parameter, never SQL text."""

    status: str = "FAILED"  # one of `statuses.STATUSES` (see `statuses.status_named`)
    queue_name: str | None = None
    task_name: str | None = None
    error_class: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    batch_id: int | None = None

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


class JobListReads(StoreBase):
    def jobs_page(
        self, which: JobFilter, *, cursor: str | None = None, limit: int = 50
    ) -> JobsPage:
        """A page of jobs, newest first, in keyset order (``cursor`` from the last page).

        Newest: by id in the execution statuses, by finish time for SUCCESSFUL.
        """
        if which.status == "SUCCESSFUL":
            return self.read(lambda conn: _successful_page(conn, which, cursor, limit))
        return self.read(lambda conn: _execution_page(conn, which, cursor, limit))

    def failed_error_classes(self, limit: int = 20) -> list[tuple[str, int]]:
        """The most common error classes of failed jobs, with counts."""
        f = EXECUTIONS["FAILED"].table
        n = func.count().label("n")
        q = select(f.c.error_class, n).group_by(f.c.error_class).order_by(n.desc()).limit(limit)
        return self.read(lambda conn: [(str(r[0]), int(r[1])) for r in conn.execute(q).all()])


def _execution_page(conn: Connection, which: JobFilter, cursor: str | None, limit: int) -> JobsPage:
    if which.error_class is not None and which.status != "FAILED":
        return JobsPage([], None)  # only failed jobs have an error class
    t, at_col = EXECUTIONS[which.status]
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
    if which.batch_id is not None:
        post.append(j.c.batch_id == which.batch_id)
    if which.since is not None:
        post.append(at_col >= which.since)
    if which.until is not None:
        post.append(at_col < which.until)
    base = base.order_by(key.desc())

    if post:
        window = base.limit(bounds.SCAN_WINDOW).subquery()
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
    rows = _list_rows(conn, which.status, ids[:limit])
    if len(ids) > limit:
        return JobsPage(rows, str(ids[limit - 1]))
    if window is not None:
        # The page is not full: was it because the window ended?
        last = conn.execute(
            select(func.min(window.c.job_id), func.count()).select_from(window)
        ).one()
        if int(last[1]) >= bounds.SCAN_WINDOW:
            return JobsPage(rows, str(int(last[0])), window_exhausted=True)
    return JobsPage(rows, None)


def _successful_page(
    conn: Connection, which: JobFilter, cursor: str | None, limit: int
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
    if which.batch_id is not None:
        post.append(j.c.batch_id == which.batch_id)
    base = base.order_by(fin.desc(), j.c.id.desc())
    window = None
    if post:
        window = (
            base.add_columns(j.c.queue_name, j.c.task_name, j.c.batch_id)
            .limit(bounds.SCAN_WINDOW)
            .subquery()
        )
        wpost = [
            (window.c.queue_name == which.queue_name)
            if which.queue_name is not None
            else literal(True),
            (window.c.task_name == which.task_name)
            if which.task_name is not None
            else literal(True),
            (window.c.batch_id == which.batch_id) if which.batch_id is not None else literal(True),
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
    rows = _list_rows(conn, "SUCCESSFUL", [k[0] for k in keys[:limit]])
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
        if edge is not None and int(n) >= bounds.SCAN_WINDOW:
            return JobsPage(rows, _make_time_cursor(edge[1], int(edge[0])), window_exhausted=True)
    return JobsPage(rows, None)


def _list_rows(conn: Connection, status: str, ids: list[int]) -> list[JobListRow]:
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
    if status == "SUCCESSFUL":
        cols.append(j.c.finished_at.label("at"))
    else:
        t, at_col = EXECUTIONS[status]
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


def _int_cursor(cursor: str) -> int:
    # A cursor is the last id of a page: past the last possible id nothing is left.
    try:
        return parse_job_id(cursor, "cursor")
    except ValueError:
        raise ValueError(f"bad cursor {cursor[:40]!r}") from None


def _make_time_cursor(at: datetime, job_id: int) -> str:
    return f"{at.isoformat()}_{job_id}"


def _time_cursor(cursor: str) -> tuple[datetime, int]:
    at, sep, job_id = cursor.rpartition("_")
    try:
        if not sep:
            raise ValueError
        return parse_time(at, "cursor"), parse_job_id(job_id, "cursor")
    except ValueError:
        raise ValueError(f"bad cursor {cursor[:40]!r}") from None
