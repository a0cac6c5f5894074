"""SQL of workflows: `stalwart_batches`, `stalwart_job_dependencies` and
`stalwart_waiting_executions` — what enqueueing a job of a batch or with dependencies
writes, and what the end of such a job does to its batch and to the jobs waiting on it.

Jobs of no batch and with no dependents never come here: their completion is the
plain one (`claimed.py`, `postgres.py`). A job's batch is set when it is enqueued; its
``has_dependents`` flag is set (under locks, see `_lock_dependencies`) when a dependent
is enqueued, and a worker reads both when it claims the job.

Exactly-once callbacks: every end of a batch's job decrements the batch's ``pending``
(a row lock held to commit, per batch), and the one transaction whose conditional
``UPDATE ... SET finished_at WHERE pending = 0 AND closed_at IS NOT NULL AND
finished_at IS NULL`` changes the row enqueues the callbacks, in the same transaction.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import Connection, delete, insert, select, true, update

from ..errors import BatchNotFound, DependencyFailed, DependencyNotFound, error_record
from . import schema as s
from .records import NewJob

j, b, d, w = s.jobs, s.batches, s.job_dependencies, s.waiting_executions


class Placer(Protocol):
    """What of the store a workflow step needs: writing jobs and placing them."""

    def _insert_job_rows(
        self, conn: Connection, chunk: Sequence[NewJob], now: datetime
    ) -> list[int]: ...

    def _place(self, conn: Connection, jobs: list[tuple[int, NewJob]], now: datetime) -> None: ...

    def _insert_plain(
        self, conn: Connection, jobs: Sequence[NewJob], now: datetime
    ) -> list[int]: ...


# ---- enqueue ----


def insert_jobs(
    store: Placer, conn: Connection, jobs: Sequence[NewJob], now: datetime
) -> list[int]:
    """Enqueue jobs of which some join a batch or wait for dependencies."""
    if any(x.unique_key is not None for x in jobs):
        raise ValueError("a unique_key cannot be combined with a batch or after=")
    deps = sorted({dep for x in jobs for dep in x.after})
    states = _lock_dependencies(conn, deps) if deps else {}
    # Counted before they are placed: a job placed may end at once (discarded by a full
    # concurrency limit), and its end must not find the batch empty.
    per_batch = Counter(x.batch_id for x in jobs if x.batch_id is not None)
    for batch_id in sorted(per_batch):
        n = per_batch[batch_id]
        done = conn.execute(
            update(b).where(b.c.id == batch_id).values(total=b.c.total + n, pending=b.c.pending + n)
        ).rowcount
        if not done:
            raise BatchNotFound(f"no batch with id {batch_id}")
    if not deps:
        # Jobs of a batch only: the plain bulk insert and placement (COPY on PostgreSQL).
        ids = store._insert_plain(conn, jobs, now)
    else:
        ids = []
        for start in range(0, len(jobs), 1000):  # the chunks of `jobs.INSERT_CHUNK`
            ids.extend(store._insert_job_rows(conn, jobs[start : start + 1000], now))
    plain = [(i, x) for i, x in zip(ids, jobs, strict=True) if not x.after]
    if plain and deps:
        store._place(conn, plain, now)
    ended: list[tuple[int, bool]] = []
    for job_id, x in zip(ids, jobs, strict=True):
        if x.after:
            ended.extend(_wait(store, conn, job_id, x, states, now))
    if deps:
        conn.execute(update(j).where(j.c.id.in_(deps)).values(has_dependents=True))
    if ended:
        settle(store, conn, ended, now)
    return ids


def _lock_dependencies(conn: Connection, deps: list[int]) -> dict[int, str]:
    """Lock the dependencies and say where each is: "ok", "failed", "running" or
    "pending". Their ready and claimed rows are locked before their job rows (the claim's
    and the completion's order): a job being claimed now is seen as running, so the
    dependent is rechecked; one not claimed yet is claimed after this commits and reads
    its new ``has_dependents``."""
    ready = s.ready_executions
    conn.execute(select(ready.c.job_id).where(ready.c.job_id.in_(deps)).with_for_update()).all()
    c = s.claimed_executions
    running = set(
        conn.execute(select(c.c.job_id).where(c.c.job_id.in_(deps)).with_for_update()).scalars()
    )
    rows = conn.execute(
        select(j.c.id, j.c.finished_at).where(j.c.id.in_(deps)).order_by(j.c.id).with_for_update()
    ).all()
    missing = set(deps) - {int(r.id) for r in rows}
    if missing:
        raise DependencyNotFound(
            f"after= names job(s) {', '.join(map(str, sorted(missing)))} that do not exist"
        )
    f = s.failed_executions
    failed = set(
        conn.execute(select(f.c.job_id).where(f.c.job_id.in_(deps)).with_for_update()).scalars()
    )
    states = {}
    for r in rows:
        i = int(r.id)
        states[i] = (
            "ok"
            if r.finished_at is not None
            else "failed"
            if i in failed
            else "running"
            if i in running
            else "pending"
        )
    return states


def _wait(
    store: Placer,
    conn: Connection,
    job_id: int,
    job: NewJob,
    states: dict[int, str],
    now: datetime,
) -> list[tuple[int, bool]]:
    """Put a new job in waiting, or (its dependencies all ended) in line; what ended."""
    after = sorted(set(job.after))
    conn.execute(
        insert(d),
        [{"job_id": job_id, "depends_on": dep, "pass_as": job.pass_as} for dep in after],
    )
    failed = [dep for dep in after if states[dep] == "failed"]
    if failed and job.on_dependency_failure == "fail":
        _fail(conn, [job_id], {job_id: failed[0]}, now)
        return [(job_id, False)]
    if job.pass_as:
        _pass_results(conn, [job_id], now)
    remaining = sum(1 for dep in after if states[dep] in ("pending", "running"))
    if remaining == 0:
        store._place(conn, [(job_id, job)], now)
        return []
    conn.execute(
        insert(w).values(
            job_id=job_id,
            queue_name=job.queue_name,
            priority=job.priority,
            remaining=remaining,
            on_failure=job.on_dependency_failure,
            recheck=any(states[dep] == "running" for dep in after),
            created_at=now,
        )
    )
    return []


# ---- the end of a job ----


def settle(store: Placer, conn: Connection, ended: list[tuple[int, bool]], now: datetime) -> None:
    """Jobs ended (True: succeeded, False: failed for good or cancelled): count them in
    their batches, finish the batches that are done (and enqueue their callbacks), and
    let their dependents go — or fail them, which ends them in turn."""
    while ended:
        ids = [i for i, _ in ended]
        ok = dict(ended)
        rows = conn.execute(
            select(j.c.id, j.c.batch_id, j.c.has_dependents).where(j.c.id.in_(ids))
        ).all()
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            if r.batch_id is not None:
                counts[int(r.batch_id)][0 if ok[int(r.id)] else 1] += 1
        for batch_id in sorted(counts):
            good, bad = counts[batch_id]
            conn.execute(
                update(b)
                .where(b.c.id == batch_id)
                .values(
                    pending=b.c.pending - good - bad,
                    succeeded=b.c.succeeded + good,
                    failed=b.c.failed + bad,
                )
            )
        finish_batches(store, conn, sorted(counts), now)
        parents = [int(r.id) for r in rows if r.has_dependents]
        ended = _release_dependents(store, conn, parents, ok, now) if parents else []


def _release_dependents(
    store: Placer, conn: Connection, parents: list[int], ok: dict[int, bool], now: datetime
) -> list[tuple[int, bool]]:
    edges = conn.execute(
        select(d.c.job_id, d.c.depends_on, d.c.pass_as).where(d.c.depends_on.in_(parents))
    ).all()
    children = sorted({int(e.job_id) for e in edges})
    if not children:
        return []
    waiting = {
        int(r.job_id): r
        for r in conn.execute(
            select(w).where(w.c.job_id.in_(children)).order_by(w.c.job_id).with_for_update()
        ).all()
    }
    failing: dict[int, int] = {}
    freed: dict[int, int] = Counter()
    for e in edges:
        child, parent = int(e.job_id), int(e.depends_on)
        row = waiting.get(child)
        if row is None:
            continue  # not waiting (any more): failed, cancelled, or rechecked already
        if not ok[parent] and row.on_failure == "fail":
            failing.setdefault(child, parent)
        else:
            freed[child] += 1
    if failing:
        conn.execute(delete(w).where(w.c.job_id.in_(list(failing))))
        _fail(conn, list(failing), failing, now)
    go = []
    for child, n in sorted(freed.items()):
        if child in failing:
            continue
        left = int(waiting[child].remaining) - n
        if left > 0:
            conn.execute(update(w).where(w.c.job_id == child).values(remaining=left))
        else:
            go.append(child)
    if go:
        _go(store, conn, go, now)
    return [(child, False) for child in sorted(failing)]


def _go(store: Placer, conn: Connection, job_ids: list[int], now: datetime) -> None:
    """Waiting jobs whose dependencies all ended: to ready, blocked or scheduled."""
    conn.execute(delete(w).where(w.c.job_id.in_(job_ids)))
    _pass_results(conn, job_ids, now)
    rows = conn.execute(
        select(
            j.c.id, j.c.queue_name, j.c.priority, j.c.concurrency_limits, j.c.scheduled_at
        ).where(j.c.id.in_(job_ids))
    ).all()
    jobs = [
        (
            int(r.id),
            NewJob(
                task_name="",
                queue_name=r.queue_name,
                priority=int(r.priority),
                args="",
                kwargs="",
                scheduled_at=r.scheduled_at,
                concurrency_limits=r.concurrency_limits,
            ),
        )
        for r in rows
    ]
    store._place(conn, jobs, now)


def _pass_results(conn: Connection, job_ids: list[int], now: datetime) -> None:
    """Chains: the return value of a job's dependency into its ``pass_as`` keyword."""
    rows = conn.execute(
        select(d.c.job_id, d.c.pass_as, j.c.result)
        .select_from(d.join(j, j.c.id == d.c.depends_on))
        .where(d.c.job_id.in_(job_ids), d.c.pass_as.is_not(None), j.c.finished_at.is_not(None))
    ).all()
    for r in rows:
        kwargs = conn.execute(select(j.c.kwargs).where(j.c.id == r.job_id)).scalar_one()
        merged = {**json.loads(kwargs), r.pass_as: json.loads(r.result) if r.result else None}
        conn.execute(update(j).where(j.c.id == r.job_id).values(kwargs=json.dumps(merged)))


def _fail(conn: Connection, job_ids: list[int], because: dict[int, int], now: datetime) -> None:
    """Fail jobs whose dependency failed: DependencyFailed, never run."""
    rows = conn.execute(select(j.c.id, j.c.queue_name, j.c.errors).where(j.c.id.in_(job_ids)))
    for r in rows.all():
        dep = because[int(r.id)]
        error = error_record(
            DependencyFailed(f"job {dep}, which this job depends on, failed or was cancelled"),
            now,
        )
        errors = (json.loads(r.errors) if r.errors else []) + [error]
        conn.execute(update(j).where(j.c.id == r.id).values(errors=json.dumps(errors)))
        conn.execute(
            insert(s.failed_executions).values(
                job_id=r.id,
                queue_name=r.queue_name,
                error_class=error["class"],
                error=json.dumps(error),
                created_at=now,
            )
        )


def recheck_waiting(store: Placer, conn: Connection, limit: int, now: datetime) -> int:
    """Waiting jobs enqueued while a dependency was running (see `_lock_dependencies`):
    settle those whose dependencies have all ended since; the number let go or failed."""
    rows = conn.execute(
        select(w).where(w.c.recheck == true()).order_by(w.c.job_id).limit(limit).with_for_update()
    ).all()
    done = 0
    for row in rows:
        child = int(row.job_id)
        deps = list(conn.execute(select(d.c.depends_on).where(d.c.job_id == child)).scalars())
        states = _lock_dependencies(conn, sorted(int(x) for x in deps))
        if any(v in ("pending", "running") for v in states.values()):
            continue
        failed = [dep for dep, v in states.items() if v == "failed"]
        done += 1
        if failed and row.on_failure == "fail":
            conn.execute(delete(w).where(w.c.job_id == child))
            _fail(conn, [child], {child: failed[0]}, now)
            settle(store, conn, [(child, False)], now)
        else:
            _go(store, conn, [child], now)
    return done


# ---- batches ----


def create_batch(
    conn: Connection, description: str | None, callbacks: list[dict[str, Any]], now: datetime
) -> int:
    result = conn.execute(
        insert(b).values(
            description=description,
            total=0,
            pending=0,
            succeeded=0,
            failed=0,
            callbacks=json.dumps(callbacks),
            created_at=now,
        )
    )
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])


def close_batch(store: Placer, conn: Connection, batch_id: int, now: datetime) -> None:
    """The ``with`` block is over: no more jobs but its own fan-out; finish it if done."""
    found = conn.execute(
        update(b).where(b.c.id == batch_id, b.c.closed_at.is_(None)).values(closed_at=now)
    ).rowcount
    if not found:
        raise BatchNotFound(f"no open batch with id {batch_id}")
    finish_batches(store, conn, [batch_id], now)


def finish_batches(store: Placer, conn: Connection, batch_ids: list[int], now: datetime) -> None:
    """Finish each batch that is closed and has nothing pending; the one statement that
    changes the row (there is exactly one) is followed by the callbacks' enqueue."""
    for batch_id in batch_ids:
        won = conn.execute(
            update(b)
            .where(
                b.c.id == batch_id,
                b.c.pending == 0,
                b.c.closed_at.is_not(None),
                b.c.finished_at.is_(None),
            )
            .values(finished_at=now)
        ).rowcount
        if won == 1:
            _run_callbacks(store, conn, batch_id, now)


def _run_callbacks(store: Placer, conn: Connection, batch_id: int, now: datetime) -> None:
    row = conn.execute(select(b.c.failed, b.c.callbacks).where(b.c.id == batch_id)).one()
    callbacks = json.loads(row.callbacks or "[]")
    wanted = {"finish", "failure" if row.failed else "success"}
    due = [cb for cb in callbacks if cb["on"] in wanted]
    if not due:
        return
    jobs = []
    for cb in due:
        spec = cb["job"]
        kwargs = {**json.loads(spec["kwargs"]), "batch_id": batch_id}
        jobs.append(
            NewJob(
                task_name=spec["task_name"],
                queue_name=spec["queue_name"],
                priority=int(spec["priority"]),
                args=spec["args"],
                kwargs=json.dumps(kwargs),
                scheduled_at=now,
                context=spec.get("context"),
                concurrency_limits=spec.get("concurrency_limits"),
                timeout=spec.get("timeout"),
                rate_limits=spec.get("rate_limits"),
            )
        )
    ids = store._insert_job_rows(conn, jobs, now)
    store._place(conn, list(zip(ids, jobs, strict=True)), now)
    for cb, job_id in zip(due, ids, strict=True):
        cb["job_id"] = job_id
    conn.execute(update(b).where(b.c.id == batch_id).values(callbacks=json.dumps(callbacks)))


def reopen_retried(conn: Connection, batch_jobs: Sequence[int], rerun_callbacks: bool) -> None:
    """Failed jobs of batches go back in line: pending again in their batch; its
    callbacks run again when it ends only with ``rerun_callbacks``."""
    per_batch = Counter(batch_jobs)
    for batch_id in sorted(per_batch):
        n = per_batch[batch_id]
        values: dict[str, Any] = {"pending": b.c.pending + n, "failed": b.c.failed - n}
        if rerun_callbacks:
            values["finished_at"] = None
        conn.execute(update(b).where(b.c.id == batch_id).values(**values))
