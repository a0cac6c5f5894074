"""Concurrency limits: slots taken at ready, blocked jobs, expiry (semaphores_maintain)."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import text

from stalwart.store import Store, utcnow

from ..helpers import count, semaphore
from .conftest import claim_all, job, limit, register


def test_jobs_over_the_limit_are_blocked_in_priority_then_fifo_order(store: Store) -> None:
    limits = [limit("acct/7", to=2)]
    ids = store.jobs_enqueue([job(limits=limits) for _ in range(3)])
    [late_high] = store.jobs_enqueue([job(limits=limits, priority=5)])
    assert [store.job_get(i).status for i in ids] == ["READY", "READY", "BLOCKED"]
    assert semaphore(store, "acct/7") is not None
    assert semaphore(store, "acct/7")[0] == 0  # type: ignore[index]
    pid = register(store)
    claim_all(store, pid)
    store.claimed_release(pid, [ids[0]])  # a release keeps the slot: ready again at once
    assert store.job_get(ids[0]).status == "READY"
    assert store.job_get(late_high).status == "BLOCKED"


def test_other_keys_do_not_wait_on_a_full_one(store: Store) -> None:
    store.jobs_enqueue([job(limits=[limit("a")]), job(limits=[limit("a")])])
    [free] = store.jobs_enqueue([job(limits=[limit("b")])])
    assert store.job_get(free).status == "READY"
    assert count(store, "blocked_executions") == 1


def test_a_job_needing_two_keys_waits_for_both(store: Store) -> None:
    store.jobs_enqueue([job(limits=[limit("x")])])
    [both] = store.jobs_enqueue([job(limits=[limit("y"), limit("x")])])
    assert store.job_get(both).status == "BLOCKED"
    # It took no slot of "y" while it waits.
    assert semaphore(store, "y")[0] == 1  # type: ignore[index]


def test_discard_on_conflict_fails_the_job_at_once(store: Store) -> None:
    store.jobs_enqueue([job(limits=[limit("d", on_conflict="discard")])])
    [dropped] = store.jobs_enqueue([job(limits=[limit("d", on_conflict="discard")])])
    row = store.job_get(dropped)
    assert row.status == "FAILED"
    assert json.loads(row.errors or "[]")[0]["class"] == "stalwart.errors.Discarded"


def test_maintain_expires_semaphores_and_unblocks_their_jobs(store: Store) -> None:
    holder, waiter = store.jobs_enqueue([job(limits=[limit("e")]), job(limits=[limit("e")])])
    claim_all(store, register(store))
    assert store.semaphores_maintain() == (0, 0)
    past = utcnow() - timedelta(seconds=1)
    with store.engine.begin() as conn:  # the holder died: its slot's time ran out
        conn.execute(text("UPDATE stalwart_semaphores SET expires_at = :t"), {"t": past})
        conn.execute(text("UPDATE stalwart_blocked_executions SET expires_at = :t"), {"t": past})
    assert store.semaphores_maintain() == (1, 1)
    assert store.job_get(waiter).status == "READY"
    assert store.job_get(holder).status == "RUNNING"
