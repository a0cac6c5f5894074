"""jobs_enqueue, job_get, jobs_get, job_cancel, jobs_clear_finished."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import text

from stalwart.errors import JobNotFound, UniqueJobExists
from stalwart.store import Store, utcnow

from ..helpers import count
from .conftest import claim_all, job, register, success


def test_enqueue_returns_ids_in_order_and_makes_due_jobs_ready(store: Store) -> None:
    ids = store.jobs_enqueue([job(args=[i]) for i in range(5)])
    assert ids == sorted(ids) and len(set(ids)) == 5
    rows = store.jobs_get(ids)
    assert [json.loads(r.args) for r in rows] == [[i] for i in range(5)]
    assert {r.status for r in rows} == {"READY"}
    assert count(store, "ready_executions") == 5


def test_a_job_for_later_is_scheduled_not_ready(store: Store) -> None:
    [later] = store.jobs_enqueue([job(at=utcnow() + timedelta(hours=1))])
    assert store.job_get(later).status == "SCHEDULED"
    assert count(store, "ready_executions") == 0
    assert count(store, "scheduled_executions", job_id=later) == 1


@pytest.mark.parametrize("n", [1, 99, 100, 2500])
def test_bulk_enqueue_keeps_order_and_every_byte(store: Store, n: int) -> None:
    # Around the COPY threshold (100) on PostgreSQL, and past one INSERT chunk elsewhere.
    tricky = "tab\there\nnew\\line \\N \r ünïcødé 🎉"
    jobs = [job(args=[i, tricky], queue="bulk") for i in range(n)]
    jobs[-1].scheduled_at = utcnow() + timedelta(hours=1)
    ids = store.jobs_enqueue(jobs)
    assert len(ids) == n and ids == sorted(ids)
    rows = store.jobs_get([ids[0], ids[-1]])
    assert json.loads(rows[0].args) == [0, tricky]
    assert json.loads(rows[-1].args) == [n - 1, tricky]
    assert count(store, "ready_executions", queue_name="bulk") == n - 1
    assert rows[-1].status == "SCHEDULED"


def test_enqueue_in_the_callers_transaction_rolls_back_with_it(store: Store) -> None:
    with store.engine.connect() as conn:
        tx = conn.begin()
        [job_id] = store.jobs_enqueue([job()], conn=conn)
        tx.rollback()
    assert store.jobs_get([job_id]) == []
    with store.engine.connect() as conn, conn.begin():
        [kept] = store.jobs_enqueue([job()], conn=conn)
    assert store.job_get(kept).status == "READY"


def test_unique_keys_raise_ignore_or_replace(store: Store) -> None:
    [first] = store.jobs_enqueue([job(unique_key="k")])
    with pytest.raises(UniqueJobExists) as raised:
        store.jobs_enqueue([job(unique_key="k")])
    assert raised.value.job_id == first
    assert store.jobs_enqueue([job(unique_key="k", unique_conflict="ignore")]) == [first]
    [second] = store.jobs_enqueue([job(unique_key="k", unique_conflict="replace")])
    assert second != first
    assert store.job_get(first).status == "FAILED"  # replaced: cancelled
    assert store.job_get(second).status == "READY"


def test_a_running_unique_job_is_not_replaced_and_a_finished_one_frees_its_key(
    store: Store,
) -> None:
    [first] = store.jobs_enqueue([job(unique_key="k")])
    pid = register(store)
    assert claim_all(store, pid) == [first]
    assert store.jobs_enqueue([job(unique_key="k", unique_conflict="replace")]) == [first]
    store.claimed_complete(pid, [success(first)])
    [again] = store.jobs_enqueue([job(unique_key="k")])
    assert again != first


def test_job_get_of_an_unknown_id_raises(store: Store) -> None:
    with pytest.raises(JobNotFound, match="no job with id 424242"):
        store.job_get(424242)


def test_cancel_takes_waiting_jobs_out_of_line_and_asks_running_ones_to_stop(
    store: Store,
) -> None:
    ready, later, running = store.jobs_enqueue(
        [job(), job(at=utcnow() + timedelta(hours=1)), job(priority=-1)]
    )
    pid = register(store)
    assert store.job_cancel(ready) and store.job_cancel(later)
    assert claim_all(store, pid) == [running]
    assert not store.job_cancel(ready)  # already cancelled: it has ended
    for job_id in (ready, later):
        row = store.job_get(job_id)
        assert row.status == "FAILED"
        [error] = json.loads(row.errors or "[]")
        assert error["class"] == "stalwart.errors.Cancelled"
    # A running job cannot leave its worker: the request waits for it to look.
    assert store.cancellations_among([running, ready]) == set()
    assert store.job_cancel(running) and store.job_cancel(running)  # twice: one request
    assert store.cancellations_among([running, ready]) == {running}
    assert store.job_get(running).status == "RUNNING"
    assert [e["event"] for e in json.loads(store.job_get(running).history or "[]")] == ["cancel"]
    # It finished meanwhile: harmless. The request is moot; upkeep forgets it.
    store.claimed_complete(pid, [success(running)])
    assert store.job_get(running).status == "SUCCESSFUL"
    assert not store.job_cancel(running)
    assert store.cancellations_prune() == 1
    assert store.cancellations_among([running]) == set()


def test_clear_finished_deletes_only_old_finished_jobs(store: Store) -> None:
    ids = store.jobs_enqueue([job() for _ in range(5)])
    pid = register(store)
    claim_all(store, pid)
    store.claimed_complete(pid, [success(i) for i in ids[:4]])
    with store.engine.begin() as conn:  # two of them finished a day ago
        conn.execute(
            text("UPDATE stalwart_jobs SET finished_at = :t WHERE id IN (:a, :b)"),
            {"t": utcnow() - timedelta(days=1), "a": ids[0], "b": ids[1]},
        )
    assert store.jobs_clear_finished(utcnow() - timedelta(hours=1), batch_size=1) == 2
    assert [r.id for r in store.jobs_get(ids)] == ids[2:]
