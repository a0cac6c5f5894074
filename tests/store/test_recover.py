"""claimed_release, claimed_recover, claimed_by: handing jobs back, crashes."""

from __future__ import annotations

import json

from stalwart.store import Store

from ..helpers import count
from .conftest import claim_all, job, limit, register


def test_release_hands_jobs_back_as_if_never_started(store: Store) -> None:
    a, b, c = store.jobs_enqueue([job(priority=3), job(), job()])
    pid = register(store)
    claim_all(store, pid)
    assert store.claimed_release(pid, [b]) == 1
    assert sorted(store.claimed_by(pid)) == sorted([a, c])
    assert store.claimed_release(pid) == 2
    assert store.claimed_by(pid) == []
    for job_id in (a, b, c):
        row = store.job_get(job_id)
        assert (row.status, row.attempts, row.crashes) == ("READY", 0, 0)
    assert claim_all(store) == [a, b, c]  # priority and order kept


def test_recover_charges_a_crash_then_retries_or_fails_and_deregisters(store: Store) -> None:
    limits = [limit("k/1", to=2)]
    retried, failed = store.jobs_enqueue([job(task="ok"), job(task="poison", limits=limits)])
    pid = register(store)
    other = register(store, "other")
    claim_all(store, pid)
    error = {"class": "stalwart.errors.ProcessExited", "message": "gone", "traceback": ""}
    got = store.claimed_recover(pid, error, lambda task, crashes: task == "ok")
    assert got == ([retried], [failed])
    assert [p.id for p in store.processes_list()] == [other]
    r, f = store.job_get(retried), store.job_get(failed)
    assert (r.status, r.crashes, r.attempts) == ("READY", 1, 0)
    assert (f.status, f.crashes) == ("FAILED", 1)
    for row in (r, f):
        [e] = json.loads(row.errors or "[]")
        assert e["class"] == "stalwart.errors.ProcessExited" and e["at"]
    assert count(store, "failed_executions", error_class="stalwart.errors.ProcessExited") == 1
    # The failed job gave back its slot: two more may run at once.
    more = store.jobs_enqueue([job(limits=limits), job(limits=limits)])
    assert {store.job_get(i).status for i in more} == {"READY"}


def test_recover_of_a_process_holding_nothing_just_deregisters(store: Store) -> None:
    pid = register(store)
    assert store.claimed_recover(pid, {"class": "X"}, lambda *_: True) == ([], [])
    assert store.processes_list() == []
