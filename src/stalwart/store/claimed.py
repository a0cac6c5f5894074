"""SQL of `stalwart_claimed_executions`: finishing, failing and releasing claimed jobs."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Connection, bindparam, delete, func, insert, literal, select, update

from . import flow
from . import schema as s
from .base import StoreBase, driver_sql, epoch_timestamp, from_epoch
from .history import add_history
from .records import Outcome
from .semaphores import Waiting, make_ready, release

c = s.claimed_executions
j = s.jobs


_FINISH_JOB = (
    f"UPDATE {j.name} SET finished_at = ?, started_at = ?, result = ?,"
    " attempts = attempts + 1, unique_key = NULL WHERE id = ?"
)
FinishRow = tuple[str, str, str | None, int]  # one job's parameters of _FINISH_JOB


class ClaimedStore(StoreBase):
    preserve_finished_jobs: bool = True

    def claimed_complete(self, process_id: int | None, outcomes: Sequence[Outcome]) -> list[int]:
        """Write a batch of finished attempts in one transaction.

        Only jobs still claimed by ``process_id`` are written: if the process was pruned
        meanwhile and the job handed to another, this late result is dropped (the ids
        written are returned).
        """
        if not outcomes:
            return []
        # The finished rows' parameters are formatted before the transaction: on a
        # single-writer database, its lock is held for as little as can be.
        finish: dict[int, FinishRow] = {
            o.job_id: (
                epoch_timestamp(o.finished_at),
                epoch_timestamp(o.started_at),
                o.result,
                o.job_id,
            )
            for o in outcomes
            if o.kind == "success"
        }
        return self.run(lambda conn: self._complete(conn, process_id, outcomes, finish))

    def _complete(
        self,
        conn: Connection,
        process_id: int | None,
        outcomes: Sequence[Outcome],
        finish: dict[int, FinishRow],
    ) -> list[int]:
        owned = self._take_owned(conn, process_id, [o.job_id for o in outcomes])
        mine = [o for o in outcomes if o.job_id in owned]
        successes = [o for o in mine if o.kind == "success"]
        others = [o for o in mine if o.kind != "success"]
        if successes:
            self._write_successes(conn, successes, finish)
        if others:
            self._write_failures(conn, others)
        return [o.job_id for o in mine]

    def _take_owned(self, conn: Connection, process_id: int | None, ids: list[int]) -> set[int]:
        """Delete the claimed rows of ``ids`` that ``process_id`` still holds; return them."""
        if self.caps.delete_returning:
            owner = "process_id IS NULL" if process_id is None else "process_id = ?"
            marks = ", ".join("?" * len(ids))
            sql = f"DELETE FROM {c.name} WHERE job_id IN ({marks}) AND {owner} RETURNING job_id"
            params = (*ids, process_id) if process_id is not None else tuple(ids)
            return {row[0] for row in conn.exec_driver_sql(driver_sql(conn, sql), params)}
        # Without DELETE ... RETURNING (MySQL): lock, read, delete.
        where = c.c.job_id.in_(ids) & _owner_is(process_id)
        owned_q = select(c.c.job_id).where(where).with_for_update()
        owned = {int(i) for i in conn.execute(owned_q).scalars()}
        if owned:
            conn.execute(delete(c).where(c.c.job_id.in_(owned)))
        return owned

    def _write_successes(
        self,
        conn: Connection,
        done: Sequence[Outcome],
        finish: dict[int, FinishRow],
    ) -> None:
        release(
            conn, [o.concurrency_limits for o in done if o.concurrency_limits], self.clock.now()
        )
        # Jobs of a batch or with dependents: their end is counted (known at claim time,
        # so a plain job's completion does no more than before).
        ended = [(o.job_id, True) for o in done if o.workflow]
        if not self.preserve_finished_jobs:
            if ended:
                flow.settle(
                    cast(flow.Placer, self), conn, ended, self.clock.now()
                )  # before their rows go
            conn.execute(delete(j).where(j.c.id.in_([o.job_id for o in done])))
            return
        # One row of parameters per job, sent to the driver as they are.
        conn.exec_driver_sql(driver_sql(conn, _FINISH_JOB), [finish[o.job_id] for o in done])
        if ended:
            flow.settle(cast(flow.Placer, self), conn, ended, self.clock.now())

    def _write_failures(self, conn: Connection, outcomes: Sequence[Outcome]) -> None:
        ids = [o.job_id for o in outcomes]
        rows = conn.execute(
            select(
                j.c.id, j.c.errors, j.c.queue_name, j.c.priority, j.c.batch_id, j.c.has_dependents
            ).where(j.c.id.in_(ids))
        ).all()
        current = {int(r.id): r for r in rows}
        now = self.clock.now()
        # Leaving claimed releases the job's slots; a retry takes them again when due.
        release(conn, [o.concurrency_limits for o in outcomes if o.concurrency_limits], now)
        updates: list[dict[str, Any]] = []
        ready: list[Waiting] = []
        scheduled: list[dict[str, Any]] = []
        failed: list[dict[str, Any]] = []
        throttled: list[dict[str, Any]] = []
        discarded: list[int] = []
        ended: list[tuple[int, bool]] = []  # of batches or with dependents
        for o in outcomes:
            row = current[o.job_id]
            if row.batch_id is not None or row.has_dependents:
                if o.kind == "discard":
                    ended.append((o.job_id, True))
                elif o.retry_at is None and o.kind != "throttle":
                    ended.append((o.job_id, False))
            errors = json.loads(row.errors) if row.errors else []
            if o.error is not None:
                errors.append(o.error)
            updates.append(
                {
                    "b_id": o.job_id,
                    "b_errors": json.dumps(errors) if errors else None,
                    # Not started (over a rate, expired): the last start stays.
                    "b_started": from_epoch(o.started_at) if o.started_at else None,
                    "b_inc": 1 if o.counts_attempt else 0,
                    # A retry or snooze for later: the job's scheduled time is the new one.
                    "b_sched": o.retry_at if o.retry_at and o.retry_at > now else None,
                }
            )
            execution = {
                "job_id": o.job_id,
                "queue_name": row.queue_name,
                "priority": row.priority,
                "created_at": now,
            }
            if o.kind == "discard":
                discarded.append(o.job_id)
            elif o.kind == "throttle" and o.retry_at is not None:
                key = str(o.rate_key)[:255]
                throttled.append({**execution, "rate_key": key, "due_at": o.retry_at})
            elif o.retry_at is None:
                error = o.error or {}
                failed.append(
                    {
                        "job_id": o.job_id,
                        "queue_name": row.queue_name,
                        "error_class": str(error.get("class", "Error"))[:255],
                        "error": json.dumps(error),
                        "created_at": now,
                    }
                )
            elif o.retry_at > now:
                scheduled.append({**execution, "scheduled_at": o.retry_at})
            else:
                ready.append(
                    Waiting(o.job_id, row.queue_name, int(row.priority), o.concurrency_limits)
                )
        conn.execute(
            update(j)
            .where(j.c.id == bindparam("b_id"))
            .values(
                errors=bindparam("b_errors"),
                started_at=func.coalesce(bindparam("b_started", type_=s.Timestamp), j.c.started_at),
                attempts=j.c.attempts + bindparam("b_inc"),
                scheduled_at=func.coalesce(
                    bindparam("b_sched", type_=s.Timestamp), j.c.scheduled_at
                ),
            ),
            updates,
        )
        if ready and (discarded := make_ready(conn, ready, now)):
            ended += [(i, False) for i in discarded]
        if discarded:  # discard_on: finished, the exception kept in errors
            conn.execute(
                update(j).where(j.c.id.in_(discarded)).values(finished_at=now, unique_key=None)
            )
        if throttled:
            conn.execute(insert(s.throttled_executions), throttled)
            for line in throttled:
                waits = f"in line for a start of {line['rate_key']}"
                add_history(conn, [line["job_id"]], "rate", waits)
        _insert_executions(conn, scheduled=scheduled, failed=failed)
        # A cancel asked of a job now out of claimed is done with (acted on, or moot).
        conn.execute(delete(s.cancellations).where(s.cancellations.c.job_id.in_(ids)))
        if ended:
            flow.settle(cast(flow.Placer, self), conn, ended, now)

    def claimed_release(
        self,
        process_id: int | None,
        job_ids: Sequence[int] | None = None,
        *,
        interrupted: Sequence[int] = (),
        why: str = "its worker stopped",
    ) -> int:
        """Hand claimed jobs back to ready, as if never started (a graceful shutdown).

        Jobs in ``interrupted`` were running: each keeps a record of it (its
        ``interruptions`` count and a line of history saying ``why``).
        """
        return self.run(lambda conn: self._release(conn, process_id, job_ids, interrupted, why))

    def _release(
        self,
        conn: Connection,
        process_id: int | None,
        job_ids: Sequence[int] | None,
        interrupted: Sequence[int],
        why: str,
    ) -> int:
        q = select(c.c.job_id).where(_owner_is(process_id))
        if job_ids is not None:
            q = q.where(c.c.job_id.in_(list(job_ids)))
        ids = [int(i) for i in conn.execute(q).scalars()]
        if ids:
            requeue(conn, ids, self.clock.now())
            conn.execute(delete(c).where(c.c.job_id.in_(ids)))
            cut = sorted(set(ids) & set(interrupted))
            if cut:
                conn.execute(
                    update(j).where(j.c.id.in_(cut)).values(interruptions=j.c.interruptions + 1)
                )
                add_history(conn, cut, "interrupted", f"handed back while it ran: {why}")
        return len(ids)

    def claimed_recover(
        self,
        process_id: int,
        error: dict[str, Any],
        should_retry: Callable[[str, int], bool],
        running: Sequence[int] | None = None,
    ) -> Recovery:
        """Decide the fate of the jobs of a process that is gone; deregister it.

        ``running``: the jobs it was running when it died, if known (its supervisor
        reads them from memory it shares with it); None: unknown (pruned from afar).

        - A job it held but had not started is handed back to ready, charged nothing.
        - A job running alone (the only one, or the only one it held if we do not
          know) is blamed: its crash count goes up by one, ``error`` is recorded, and
          ``should_retry(task_name, crashes)`` says whether it runs again — alone, as a
          suspect — or fails.
        - Jobs running beside others are suspects, not guilty: each runs again alone
          (`suspect_executions`) before anything is charged to it.
        """
        known = None if running is None else set(running)
        return self.run(lambda conn: self._recover(conn, process_id, error, should_retry, known))

    def _recover(
        self,
        conn: Connection,
        process_id: int,
        error: dict[str, Any],
        should_retry: Callable[[str, int], bool],
        running: set[int] | None,
    ) -> Recovery:
        q = (
            select(
                j.c.id,
                j.c.task_name,
                j.c.crashes,
                j.c.errors,
                j.c.queue_name,
                j.c.priority,
                j.c.concurrency_limits,
                j.c.batch_id,
                j.c.has_dependents,
            )
            .select_from(c.join(j, j.c.id == c.c.job_id))
            .where(c.c.process_id == process_id)
            .order_by(j.c.id)
        )
        rows = conn.execute(q.with_for_update()).all()
        out = Recovery()
        now = self.clock.now()
        ran = [r for r in rows if running is None or int(r.id) in running]
        out.handed_back = [int(r.id) for r in rows if r not in ran]
        out.labels = {int(r.id): (str(r.queue_name), str(r.task_name)) for r in ran}
        if len(ran) == 1:
            row = ran[0]
            crashes = int(row.crashes) + 1
            errors = json.loads(row.errors) if row.errors else []
            errors.append({**error, "at": now.isoformat()})
            conn.execute(
                update(j).where(j.c.id == row.id).values(crashes=crashes, errors=json.dumps(errors))
            )
            if should_retry(row.task_name, crashes):
                out.retried.append(int(row.id))
            else:
                out.failed.append(int(row.id))
        elif ran:
            out.suspects = [int(r.id) for r in ran]
        ids = [int(r.id) for r in rows]
        if ids:
            conn.execute(delete(c).where(c.c.job_id.in_(ids)))
        if out.handed_back:
            requeue(conn, out.handed_back, now)
        # A crash charged and retried, or a suspect: it runs next alone, in a process of
        # its own, still holding its slots.
        again = [r for r in ran if int(r.id) in out.retried or int(r.id) in out.suspects]
        if again:
            conn.execute(
                insert(s.suspect_executions),
                [
                    {
                        "job_id": r.id,
                        "queue_name": r.queue_name,
                        "priority": r.priority,
                        "created_at": now,
                    }
                    for r in again
                ],
            )
        if out.suspects:
            why = (
                f"suspect: it was running beside {len(ran) - 1} other job(s) when its "
                f"process died ({error.get('message', '')}); it runs again alone"
            )
            add_history(conn, out.suspects, "suspect", why)
        if out.retried:
            add_history(
                conn,
                out.retried,
                "crash",
                "its process died while it ran alone: charged one crash; it runs again alone",
            )
        if out.failed:
            row = ran[0]
            release(conn, [row.concurrency_limits], now)
            conn.execute(
                insert(s.failed_executions).values(
                    job_id=row.id,
                    queue_name=row.queue_name,
                    error_class=str(error.get("class", "Error"))[:255],
                    error=json.dumps({**error, "at": now.isoformat()}),
                    created_at=now,
                )
            )
            add_history(
                conn,
                out.failed,
                "crash",
                "its process died while it ran alone: no crash left (max_crashes); failed",
            )
            if row.batch_id is not None or row.has_dependents:
                flow.settle(cast(flow.Placer, self), conn, [(int(row.id), False)], now)
        conn.execute(delete(s.processes).where(s.processes.c.id == process_id))
        return out

    def claimed_by(self, process_id: int | None) -> list[int]:
        q = select(c.c.job_id).where(_owner_is(process_id)).order_by(c.c.job_id)
        return self.read(lambda conn: [int(i) for i in conn.execute(q).scalars()])


@dataclass
class Recovery:
    """What became of a dead process's jobs (`claimed_recover`)."""

    # Held but not started: back to ready, charged nothing.
    handed_back: list[int] = field(default_factory=list)
    # Ran alone: charged a crash; to run again (alone) or failed.
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    # Ran beside others: each to run again alone before it can be blamed.
    suspects: list[int] = field(default_factory=list)
    # (queue, task) of the jobs that were running, for metrics and logs.
    labels: dict[int, tuple[str, str]] = field(default_factory=dict)


def _owner_is(process_id: int | None) -> Any:
    return c.c.process_id.is_(None) if process_id is None else c.c.process_id == process_id


def requeue(conn: Connection, job_ids: Sequence[int], now: datetime) -> None:
    """Put jobs back in ready, with their queue and priority."""
    conn.execute(
        insert(s.ready_executions).from_select(
            ["job_id", "queue_name", "priority", "created_at"],
            select(j.c.id, j.c.queue_name, j.c.priority, literal(now, s.Timestamp)).where(
                j.c.id.in_(list(job_ids))
            ),
        )
    )


def _insert_executions(
    conn: Connection,
    *,
    scheduled: list[dict[str, Any]],
    failed: list[dict[str, Any]],
) -> None:
    if scheduled:
        conn.execute(insert(s.scheduled_executions), scheduled)
    if failed:
        conn.execute(insert(s.failed_executions), failed)
