"""Workflows in the store: batch counters and exactly-once callbacks, dependencies
(waiting, let go, failed, rechecked), retries of batch jobs, progress."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from stalwart.errors import BatchNotFound, DependencyNotFound
from stalwart.store import ClaimedJob, FailedFilter, NewJob, Outcome, QueueSelector, Store, schema

from ..helpers import count
from .conftest import failure, job, limit, register


def cb(on: str, task: str = "t.callback", **kwargs: Any) -> dict[str, Any]:
    spec = job(task)
    spec.kwargs = json.dumps(kwargs)
    fields = ("task_name", "queue_name", "priority", "args", "kwargs")
    return {"on": on, "job": {f: getattr(spec, f) for f in fields}, "job_id": None}


CALLBACKS = [cb("success", "t.ok", month=11), cb("finish", "t.done"), cb("failure", "t.bad")]


def in_batch(batch_id: int, task: str = "t.task", **extra: Any) -> NewJob:
    return replace(job(task), batch_id=batch_id, **extra)


def claim(store: Store, pid: int, task: str | None = None) -> list[ClaimedJob]:
    jobs = store.ready_claim(pid, QueueSelector(("*",)), 1000)
    return [c for c in jobs if task is None or c.task_name == task]


def done(c: ClaimedJob, result: str | None = None) -> Outcome:
    now = time.time()
    return Outcome(c.id, now, now, "success", result=result, workflow=c.workflow)


def failed(c: ClaimedJob) -> Outcome:
    return replace(failure(c.id), workflow=c.workflow)


def tasks_of(store: Store, status: str = "READY") -> list[str]:
    with store.engine.connect() as conn:
        ids = list(conn.execute(select(schema.jobs.c.id)).scalars())
    rows = store.jobs_get(ids)
    return sorted(r.task_name for r in rows if r.status == status)


def callbacks_enqueued(store: Store) -> list[str]:
    return [t for t in tasks_of(store) if t in ("t.ok", "t.done", "t.bad")]


def test_a_batch_finishes_when_its_last_job_ends_and_enqueues_its_callbacks_once(
    store: Store,
) -> None:
    batch = store.batch_create("November", CALLBACKS)
    store.jobs_enqueue([in_batch(batch) for _ in range(3)])
    store.batch_close(batch)
    pid = register(store)
    jobs = claim(store, pid)
    assert len(jobs) == 3 and all(c.workflow and c.batch_id == batch for c in jobs)
    store.claimed_complete(pid, [done(c) for c in jobs[:2]])
    row = store.batch_get(batch)
    assert (row.total, row.pending, row.succeeded, row.finished_at) == (3, 1, 2, None)
    assert callbacks_enqueued(store) == []
    store.claimed_complete(pid, [done(jobs[2])])
    row = store.batch_get(batch)
    assert (row.pending, row.succeeded, row.failed) == (0, 3, 0)
    assert row.finished_at is not None
    assert callbacks_enqueued(store) == ["t.done", "t.ok"]
    ok = next(c for c in claim(store, pid) if c.task_name == "t.ok")
    assert json.loads(ok.kwargs) == {"month": 11, "batch_id": batch}
    assert not ok.workflow  # a callback is not a job of the batch
    fired = {x["on"]: x["job_id"] for x in json.loads(row.callbacks or "[]")}
    assert fired["success"] == ok.id and fired["failure"] is None


def test_a_batch_with_a_failure_runs_on_failure_and_on_finish(store: Store) -> None:
    batch = store.batch_create(None, CALLBACKS)
    store.jobs_enqueue([in_batch(batch), in_batch(batch, "t.fails")])
    store.batch_close(batch)
    pid = register(store)
    jobs = claim(store, pid)
    store.claimed_complete(pid, [done(jobs[0]), failed(jobs[1])])
    row = store.batch_get(batch)
    assert (row.pending, row.succeeded, row.failed) == (0, 1, 1)
    assert callbacks_enqueued(store) == ["t.bad", "t.done"]


def test_an_empty_batch_finishes_when_closed_and_an_open_one_never(store: Store) -> None:
    open_ = store.batch_create(None, CALLBACKS)
    store.jobs_enqueue([in_batch(open_)])
    pid = register(store)
    store.claimed_complete(pid, [done(c) for c in claim(store, pid)])
    # Its only job ended, but the block that fills it is not over: not finished.
    assert store.batch_get(open_).finished_at is None
    empty = store.batch_create(None, CALLBACKS)
    store.batch_close(empty)
    assert store.batch_get(empty).finished_at is not None
    assert callbacks_enqueued(store) == ["t.done", "t.ok"]
    store.batch_close(open_)
    assert callbacks_enqueued(store) == ["t.done", "t.done", "t.ok", "t.ok"]
    with pytest.raises(BatchNotFound):
        store.batch_close(open_)
    with pytest.raises(BatchNotFound):
        store.jobs_enqueue([in_batch(10**9)])


def test_the_last_two_jobs_ending_at_once_enqueue_the_callbacks_exactly_once(
    store: Store,
) -> None:
    for _ in range(10):
        store.tables_reset()
        batch = store.batch_create(None, [cb("finish", "t.done")])
        store.jobs_enqueue([in_batch(batch), in_batch(batch)])
        store.batch_close(batch)
        pids = [register(store, "a"), register(store, "b")]
        first = store.ready_claim(pids[0], QueueSelector(("*",)), 1)
        second = store.ready_claim(pids[1], QueueSelector(("*",)), 1)
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def complete(
            pid: int,
            c: ClaimedJob,
            start: threading.Barrier = start,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                start.wait()
                store.claimed_complete(pid, [done(c)])
            except BaseException as exc:
                errors.append(exc)

        threads = [
            threading.Thread(target=complete, args=(pids[0], first[0])),
            threading.Thread(target=complete, args=(pids[1], second[0])),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert tasks_of(store) == ["t.done"]
        assert store.batch_get(batch).pending == 0


def test_a_dependent_waits_then_gets_the_result_of_its_chain_step(store: Store) -> None:
    [a] = store.jobs_enqueue([job("t.a")])
    [b] = store.jobs_enqueue([replace(job("t.b"), after=(a,), pass_as="previous")])
    assert store.job_get(b).status == "WAITING"
    pid = register(store)
    [ca] = claim(store, pid)
    assert ca.has_dependents and ca.workflow
    store.claimed_complete(pid, [done(ca, "5")])
    [cb_] = claim(store, pid)
    assert cb_.id == b and json.loads(cb_.kwargs) == {"previous": 5}
    assert store.job_dependency_results(b) == {a: "5"}
    ups, downs = store.job_links(a)
    assert ups == [] and [(x.job_id, x.status) for x in downs] == [(b, "RUNNING")]


def test_a_diamond_lets_the_last_job_go_after_both_branches(store: Store) -> None:
    [a] = store.jobs_enqueue([job("t.a")])
    b, c = store.jobs_enqueue([replace(job("t.b"), after=(a,)), replace(job("t.c"), after=(a,))])
    [d] = store.jobs_enqueue([replace(job("t.d"), after=(b, c))])
    pid = register(store)
    store.claimed_complete(pid, [done(x, "1") for x in claim(store, pid)])
    branches = claim(store, pid)
    assert sorted(x.id for x in branches) == [b, c]
    store.claimed_complete(pid, [done(branches[0], "2")])
    assert store.job_get(d).status == "WAITING"
    store.claimed_complete(pid, [done(branches[1], "3")])
    assert store.job_get(d).status == "READY"
    assert store.job_dependency_results(d) == {b: "2", c: "3"}


def test_a_failed_dependency_fails_its_dependents_in_turn_or_lets_them_run(
    store: Store,
) -> None:
    [a] = store.jobs_enqueue([job("t.a")])
    batch = store.batch_create(None, [cb("finish", "t.done")])
    b, runs = store.jobs_enqueue(
        [
            replace(job("t.b"), after=(a,), batch_id=batch),
            replace(job("t.runs"), after=(a,), on_dependency_failure="run"),
        ]
    )
    [c] = store.jobs_enqueue([replace(job("t.c"), after=(b,))])
    store.batch_close(batch)
    pid = register(store)
    store.claimed_complete(pid, [failed(x) for x in claim(store, pid)])
    for x in (b, c):
        row = store.job_get(x)
        assert row.status == "FAILED"
        assert json.loads(row.errors or "[]")[-1]["class"] == "stalwart.errors.DependencyFailed"
    assert store.job_get(runs).status == "READY"
    # b's failure counted in its batch, which finished.
    assert store.batch_get(batch).failed == 1 and tasks_of(store) == ["t.done", "t.runs"]
    # Enqueued after a failed: fails at once; after one that succeeded: ready at once.
    [late] = store.jobs_enqueue([replace(job("t.late"), after=(a,))])
    assert store.job_get(late).status == "FAILED"
    with pytest.raises(DependencyNotFound, match="999999"):
        store.jobs_enqueue([replace(job("t.x"), after=(999999,))])


def test_a_dependent_enqueued_while_its_dependency_runs_is_let_go_by_the_recheck(
    store: Store,
) -> None:
    [a] = store.jobs_enqueue([job("t.a")])
    pid = register(store)
    [ca] = claim(store, pid)
    assert not ca.workflow  # claimed before it had a dependent
    [b] = store.jobs_enqueue([replace(job("t.b"), after=(a,))])
    assert store.waiting_recheck() == 0  # a still runs
    store.claimed_complete(pid, [done(ca)])
    assert store.job_get(b).status == "WAITING"
    assert store.waiting_recheck() == 1
    assert store.job_get(b).status == "READY"


def test_cancelling_a_waiting_job_counts_in_its_batch(store: Store) -> None:
    [a] = store.jobs_enqueue([job("t.a")])
    batch = store.batch_create(None, [cb("failure", "t.bad")])
    [b] = store.jobs_enqueue([replace(job("t.b"), after=(a,), batch_id=batch)])
    store.batch_close(batch)
    assert store.job_cancel(b)
    assert store.job_get(b).status == "FAILED"
    assert store.batch_get(batch).failed == 1 and "t.bad" in tasks_of(store)
    assert count(store, "waiting_executions") == 0


def test_retrying_a_failed_job_of_a_finished_batch_reruns_callbacks_only_if_asked(
    store: Store,
) -> None:
    batch = store.batch_create(None, [cb("finish", "t.done")])
    [a] = store.jobs_enqueue([in_batch(batch)])
    store.batch_close(batch)
    pid = register(store)
    store.claimed_complete(pid, [failed(x) for x in claim(store, pid)])
    assert tasks_of(store) == ["t.done"]
    store.claimed_complete(pid, [done(x) for x in claim(store, pid, "t.done")])
    for rerun, expected in ((False, []), (True, ["t.done"])):
        assert store.failed_retry(FailedFilter([a]), rerun_batch_callbacks=rerun) == 1
        assert store.batch_get(batch).pending == 1
        store.claimed_complete(pid, [failed(x) for x in claim(store, pid, "t.task")])
        assert tasks_of(store) == expected
        assert store.batch_get(batch).failed == 1


def test_a_batch_in_a_rolled_back_transaction_leaves_nothing(store: Store) -> None:
    with store.engine.connect() as conn:
        tx = conn.begin()
        batch = store.batch_create("x", [], conn=conn)
        store.jobs_enqueue([in_batch(batch)], conn=conn)
        store.batch_close(batch, conn=conn)
        tx.rollback()
    assert store.batches_list() == [] and count(store, "jobs") == 0


def test_progress_is_stored_on_the_job(store: Store) -> None:
    [a] = store.jobs_enqueue([job()])
    store.job_progress_set(a, json.dumps({"done": 3, "total": 10}))
    assert json.loads(store.job_get(a).progress or "{}") == {"done": 3, "total": 10}


def test_a_big_batch_is_enqueued_in_bulk_with_its_batch_on_every_job(store: Store) -> None:
    batch = store.batch_create(None, [])
    ids = store.jobs_enqueue([in_batch(batch) for _ in range(150)])  # COPY on PostgreSQL
    assert {r.batch_id for r in store.jobs_get(ids)} == {batch}
    assert {r.status for r in store.jobs_get(ids)} == {"READY"}
    row = store.batch_get(batch)
    assert (row.total, row.pending) == (150, 150)
    assert store.batch_jobs(batch, 10)[0].id == ids[0]


def test_a_batch_job_discarded_by_a_full_concurrency_limit_counts_as_failed(
    store: Store,
) -> None:
    batch = store.batch_create(None, [cb("failure", "t.bad")])
    lim = json.dumps([limit("k", to=1, on_conflict="discard")])
    held, dropped = store.jobs_enqueue(
        [in_batch(batch, concurrency_limits=lim), in_batch(batch, concurrency_limits=lim)]
    )
    store.batch_close(batch)
    assert store.job_get(dropped).status == "FAILED"
    row = store.batch_get(batch)
    assert (row.pending, row.failed, row.finished_at) == (1, 1, None)
    pid = register(store)
    store.claimed_complete(pid, [done(c) for c in claim(store, pid, "t.task")])
    assert store.batch_get(batch).finished_at is not None and "t.bad" in tasks_of(store)
    assert held


def test_a_job_added_to_a_running_batch_and_discarded_at_once_does_not_finish_it(
    store: Store,
) -> None:
    lim = json.dumps([limit("k", to=1, on_conflict="discard")])
    store.jobs_enqueue([replace(job("t.holder"), concurrency_limits=lim)])  # takes "k"
    batch = store.batch_create(None, [cb("finish", "t.done")])
    store.jobs_enqueue([in_batch(batch)])
    store.batch_close(batch)
    pid = register(store)
    [running] = claim(store, pid, "t.task")
    # Fan-out from the running job: the new job is discarded as it is placed.
    store.jobs_enqueue([in_batch(batch, concurrency_limits=lim)])
    row = store.batch_get(batch)
    assert (row.total, row.pending, row.failed, row.finished_at) == (2, 1, 1, None)
    store.claimed_complete(pid, [done(running)])
    assert store.batch_get(batch).finished_at is not None
