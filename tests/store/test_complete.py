"""claimed_complete: successes, failures, retries, snoozes, discards, late results."""

from __future__ import annotations

import json
from datetime import UTC, timedelta

import pytest

from stalwart.store import QueueSelector, Store, open_store, utcnow

from ..conftest import SERVER_URLS
from ..helpers import count
from .conftest import claim_all, failure, job, limit, register, success


def test_success_finishes_the_job_with_its_result(store: Store) -> None:
    a, b = store.jobs_enqueue([job(unique_key="u"), job()])
    pid = register(store)
    claim_all(store, pid)
    assert sorted(store.claimed_complete(pid, [success(a, "42"), success(b)])) == [a, b]
    row = store.job_get(a)
    assert (row.status, row.result, row.attempts, row.unique_key) == ("SUCCESSFUL", "42", 1, None)
    assert row.started_at is not None and row.finished_at is not None
    assert row.started_at <= row.finished_at
    assert store.claimed_by(pid) == [] and count(store, "claimed_executions") == 0


def test_results_and_times_are_stored_exactly_whatever_they_hold(store: Store) -> None:
    # Quotes, backslashes, braces, commas, "NULL" and non-ASCII: every character a
    # result's text can carry to the statement (arrays, JSON or rows) comes back as is.
    results = [None, '"q\\"uo\\te"', '{"k":"{,}"}', '"NULL"', '""', '"é☃"', "[1,null]"]
    ids = store.jobs_enqueue([job() for _ in results])
    pid = register(store)
    claim_all(store, pid)
    done = [success(i, r) for i, r in zip(ids, results, strict=True)]
    assert sorted(store.claimed_complete(pid, done)) == sorted(ids)
    for outcome, result in zip(done, results, strict=True):
        row = store.job_get(outcome.job_id)
        assert (row.status, row.result) == ("SUCCESSFUL", result)
        # To the microsecond, as the worker measured them.
        assert row.started_at is not None and row.finished_at is not None
        started = row.started_at.replace(tzinfo=UTC).timestamp()
        finished = row.finished_at.replace(tzinfo=UTC).timestamp()
        assert abs(started - outcome.started_at) < 2e-6
        assert abs(finished - outcome.finished_at) < 2e-6


def test_without_preserving_finished_jobs_they_are_deleted(store: Store) -> None:
    store.preserve_finished_jobs = False
    [a] = store.jobs_enqueue([job()])
    pid = register(store)
    claim_all(store, pid)
    assert store.claimed_complete(pid, [success(a)]) == [a]
    assert store.jobs_get([a]) == []


def test_a_late_result_of_a_job_no_longer_held_is_dropped(store: Store) -> None:
    [a] = store.jobs_enqueue([job()])
    first, second = register(store, "first"), register(store, "second")
    claim_all(store, first)
    store.claimed_release(first)
    claim_all(store, second)
    assert store.claimed_complete(first, [success(a, "stale")]) == []
    assert store.job_get(a).status == "RUNNING"
    assert store.claimed_complete(second, [success(a, "fresh")]) == [a]
    assert store.job_get(a).result == "fresh"


def test_a_failure_with_a_retry_later_is_scheduled_and_keeps_its_error(store: Store) -> None:
    [a] = store.jobs_enqueue([job()])
    pid = register(store)
    claim_all(store, pid)
    store.claimed_complete(pid, [failure(a, retry_in=3600)])
    row = store.job_get(a)
    assert (row.status, row.attempts) == ("SCHEDULED", 1)
    assert [e["class"] for e in json.loads(row.errors or "[]")] == ["ValueError"]
    assert row.scheduled_at > utcnow() + timedelta(minutes=59)


def test_a_failure_to_retry_now_is_ready_at_once(store: Store) -> None:
    [a] = store.jobs_enqueue([job()])
    pid = register(store)
    claim_all(store, pid)
    store.claimed_complete(pid, [failure(a, retry_in=-1)])
    assert store.job_get(a).status == "READY"
    assert claim_all(store, pid) == [a]


def test_a_final_failure_is_failed_with_its_error_class(store: Store) -> None:
    [a] = store.jobs_enqueue([job(queue="mail")])
    pid = register(store)
    claim_all(store, pid)
    store.claimed_complete(pid, [failure(a)])
    row = store.job_get(a)
    assert (row.status, row.attempts, row.finished_at) == ("FAILED", 1, None)
    assert count(store, "failed_executions", error_class="ValueError", queue_name="mail") == 1


def test_a_snooze_runs_again_later_without_counting_an_attempt(store: Store) -> None:
    [a] = store.jobs_enqueue([job()])
    pid = register(store)
    claim_all(store, pid)
    store.claimed_complete(pid, [failure(a, retry_in=60, kind="snooze", counts_attempt=False)])
    row = store.job_get(a)
    assert (row.status, row.attempts, row.errors) == ("SCHEDULED", 0, None)


def test_a_discard_finishes_the_job_with_the_error_on_record(store: Store) -> None:
    [a] = store.jobs_enqueue([job(unique_key="d")])
    pid = register(store)
    claim_all(store, pid)
    store.claimed_complete(pid, [failure(a, kind="discard")])
    row = store.job_get(a)
    assert row.status == "SUCCESSFUL" and row.unique_key is None
    assert json.loads(row.errors or "[]")[0]["message"] == "boom"


@pytest.mark.parametrize("how", ["success", "failure"])
def test_leaving_claimed_gives_back_the_slot_and_unblocks_the_next(store: Store, how: str) -> None:
    limits = [limit("acct/1")]
    holder, waiter = store.jobs_enqueue([job(limits=limits), job(limits=limits)])
    assert store.job_get(waiter).status == "BLOCKED"
    pid = register(store)
    [claimed] = store.ready_claim(pid, QueueSelector(), 5)
    assert claimed.id == holder and claimed.concurrency_limits is not None
    outcome = success(holder) if how == "success" else failure(holder)
    outcome.concurrency_limits = claimed.concurrency_limits
    store.claimed_complete(pid, [outcome])
    assert store.job_get(waiter).status == "READY"


def test_fast_and_generic_completions_write_the_same_row() -> None:
    """On PostgreSQL the one-statement completion and the generic one agree."""
    rows = []
    for fast in (True, False):
        s = open_store(SERVER_URLS["postgresql"], fast_paths=fast)
        try:
            s.tables_reset()
            [a] = s.jobs_enqueue([job()])
            pid = register(s)
            claim_all(s, pid)
            outcome = success(a, '{"x":1}')
            s.claimed_complete(pid, [outcome])
            r = s.job_get(a)
            rows.append((r.status, r.result, r.attempts, r.unique_key, r.started_at, r.finished_at))
            expected = (outcome.started_at, outcome.finished_at)
            got = tuple(
                t.replace(tzinfo=UTC).timestamp()
                for t in (r.started_at, r.finished_at)
                if t is not None
            )
            assert got == pytest.approx(expected, abs=1e-5)
        finally:
            s.dispose()
    assert rows[0][:4] == rows[1][:4]
