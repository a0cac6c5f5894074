"""failed_retry / failed_discard, scheduled_dispatch_due, queue pauses."""

from __future__ import annotations

from datetime import timedelta

from stalwart.store import FailedFilter, QueueSelector, Store, utcnow

from ..helpers import count
from .conftest import claim_all, failure, job, limit, register


def _failed(store: Store, *jobs_: object) -> list[int]:
    ids = store.jobs_enqueue(list(jobs_))  # type: ignore[arg-type]
    pid = register(store, f"w{ids[0]}")
    outcomes = []
    for claimed in store.ready_claim(pid, QueueSelector(), 100):
        outcomes.append(failure(claimed.id))
        outcomes[-1].concurrency_limits = claimed.concurrency_limits  # as a worker does
    store.claimed_complete(pid, outcomes)
    return ids


def test_retry_failed_by_filter_puts_them_back_with_their_history(store: Store) -> None:
    a, b, c = _failed(store, job(task="x", queue="q1"), job(task="y", queue="q1"), job(queue="q2"))
    assert store.failed_retry(FailedFilter(task_name="x")) == 1
    assert store.failed_retry(FailedFilter(queue_name="q2", error_class="Nope")) == 0
    assert store.failed_retry(FailedFilter(job_ids=[b, c])) == 2
    for i in (a, b, c):
        row = store.job_get(i)
        assert row.status == "READY" and row.errors is not None
    assert count(store, "failed_executions") == 0


def test_retry_failed_goes_back_through_the_limits(store: Store) -> None:
    [failed] = _failed(store, job(limits=[limit("s")]))
    [taker] = store.jobs_enqueue([job(limits=[limit("s")])])  # takes the freed slot
    assert store.job_get(taker).status == "READY"
    assert store.failed_retry(FailedFilter(job_ids=[failed])) == 1
    assert store.job_get(failed).status == "BLOCKED"


def test_discard_failed_deletes_them_for_good(store: Store) -> None:
    a, b = _failed(store, job(), job())
    failed_batch = store.failed_batch_size
    store.failed_batch_size = 1  # several batches
    try:
        assert store.failed_discard(FailedFilter()) == 2
    finally:
        store.failed_batch_size = failed_batch
    assert store.jobs_get([a, b]) == []


def test_dispatch_moves_due_jobs_only_in_batches(store: Store) -> None:
    soon = utcnow() + timedelta(seconds=30)
    due = store.jobs_enqueue([job(at=soon, priority=p) for p in (0, 5, 1)])
    [later] = store.jobs_enqueue([job(at=utcnow() + timedelta(hours=1))])
    [limited] = store.jobs_enqueue([job(at=soon, limits=[limit("z", to=1)])])
    store.jobs_enqueue([job(limits=[limit("z", to=1)])])  # holds "z"
    assert store.scheduled_dispatch_due(10) == 0
    at = soon + timedelta(seconds=1)
    assert store.scheduled_dispatch_due(2, now=at) == 2
    assert store.scheduled_dispatch_due(10, now=at) == 2
    assert {store.job_get(i).status for i in due} == {"READY"}
    assert store.job_get(limited).status == "BLOCKED"
    assert store.job_get(later).status == "SCHEDULED"
    assert claim_all(store)[:3] == [due[1], due[2], due[0]]


def test_pause_and_resume_say_whether_anything_changed(store: Store) -> None:
    assert store.queues_paused() == set()
    assert store.queue_pause("mail") and not store.queue_pause("mail")
    assert store.queue_pause("bulk")
    assert store.queues_paused() == {"mail", "bulk"}
    assert store.queue_resume("mail") and not store.queue_resume("mail")
    assert store.queues_paused() == {"bulk"}
