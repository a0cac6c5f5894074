"""claimed_release, claimed_recover (exact crash blame), suspects, claimed_by."""

from __future__ import annotations

import json

from stalwart.store import QueueSelector, Store

from ..helpers import count
from .conftest import claim_all, job, limit, register

EXITED = {"class": "stalwart.errors.ProcessExited", "message": "gone", "traceback": ""}


def test_release_hands_jobs_back_as_if_never_started(store: Store) -> None:
    a, b, c = store.jobs_enqueue([job(priority=3), job(), job()])
    pid = register(store)
    claim_all(store, pid)
    assert store.claimed_release(pid, [b]) == 1
    assert sorted(store.claimed_by(pid)) == sorted([a, c])
    assert store.claimed_release(pid, interrupted=[a], why="a deploy") == 2
    assert store.claimed_by(pid) == []
    for job_id in (a, b, c):
        row = store.job_get(job_id)
        assert (row.status, row.attempts, row.crashes) == ("READY", 0, 0)
    # The one that was running keeps a record of it; the others do not.
    cut = store.job_get(a)
    assert cut.interruptions == 1
    [entry] = json.loads(cut.history or "[]")
    assert entry["event"] == "interrupted" and "a deploy" in entry["detail"]
    assert store.job_get(c).interruptions == 0 and store.job_get(c).history is None
    assert claim_all(store) == [a, b, c]  # priority and order kept


def test_a_job_that_ran_alone_is_charged_the_crash_and_runs_again_alone(store: Store) -> None:
    alone, waiting = store.jobs_enqueue([job(task="ok", priority=1), job(task="ok")])
    pid = register(store)
    other = register(store, "other")
    claim_all(store, pid)
    done = store.claimed_recover(pid, EXITED, lambda task, crashes: True, running=[alone])
    assert (done.retried, done.failed, done.suspects, done.handed_back) == (
        [alone],
        [],
        [],
        [waiting],
    )
    assert [p.id for p in store.processes_list()] == [other]
    a, w = store.job_get(alone), store.job_get(waiting)
    assert (a.status, a.crashes, a.attempts) == ("READY", 1, 0)
    assert [e["class"] for e in json.loads(a.errors or "[]")] == ["stalwart.errors.ProcessExited"]
    # Held but not started: back in line, charged nothing, no error.
    assert (w.status, w.crashes, w.errors) == ("READY", 0, None)
    # The crasher waits to run alone: only an isolation worker takes it.
    assert claim_all(store) == [waiting]
    assert store.suspects_any(QueueSelector()) and not store.suspects_any(QueueSelector(("x",)))
    claimed = store.suspect_claim(other, QueueSelector(("default",)))
    assert claimed is not None and claimed.id == alone
    assert store.suspect_claim(other, QueueSelector()) is None


def test_jobs_running_beside_a_crash_are_suspects_not_guilty(store: Store) -> None:
    a, b, c = store.jobs_enqueue([job(), job(), job()])
    pid = register(store)
    claim_all(store, pid)
    done = store.claimed_recover(pid, EXITED, lambda *_: True, running=[a, b])
    assert (sorted(done.suspects), done.retried, done.handed_back) == ([a, b], [], [c])
    for job_id in (a, b):
        row = store.job_get(job_id)
        assert (row.status, row.crashes, row.errors) == ("READY", 0, None)
        assert json.loads(row.history or "[]")[0]["event"] == "suspect"
    assert count(store, "suspect_executions") == 2
    # A crash of the isolation run is the job's own.
    iso = register(store, "isolation")
    assert store.suspect_claim(iso, QueueSelector()).id == a  # type: ignore[union-attr]
    done = store.claimed_recover(iso, EXITED, lambda task, crashes: crashes < 2, running=[a])
    assert done.retried == [a] and store.job_get(a).crashes == 1
    iso2 = register(store, "isolation2")
    assert store.suspect_claim(iso2, QueueSelector()).id == a  # type: ignore[union-attr]
    done = store.claimed_recover(iso2, EXITED, lambda task, crashes: crashes < 2, running=[a])
    assert done.failed == [a]
    row = store.job_get(a)
    assert (row.status, row.crashes) == ("FAILED", 2)


def test_from_afar_the_sole_job_of_a_dead_process_is_charged(store: Store) -> None:
    # Pruned: nobody knows what it ran. Alone, it is the one; beside others, suspects.
    [only] = store.jobs_enqueue([job()])
    pid = register(store)
    claim_all(store, pid)
    assert store.claimed_recover(pid, EXITED, lambda *_: True).retried == [only]
    x, y = store.jobs_enqueue([job(), job()])
    pid2 = register(store, "two")
    claim_all(store, pid2)
    assert sorted(store.claimed_recover(pid2, EXITED, lambda *_: True).suspects) == [x, y]


def test_a_failed_crasher_gives_back_its_slot(store: Store) -> None:
    limits = [limit("k/1", to=2)]
    [poison] = store.jobs_enqueue([job(task="poison", limits=limits)])
    pid = register(store)
    claim_all(store, pid)
    done = store.claimed_recover(pid, EXITED, lambda *_: False, running=[poison])
    assert done.failed == [poison]
    assert count(store, "failed_executions", error_class="stalwart.errors.ProcessExited") == 1
    more = store.jobs_enqueue([job(limits=limits), job(limits=limits)])
    assert {store.job_get(i).status for i in more} == {"READY"}


def test_recover_of_a_process_holding_nothing_just_deregisters(store: Store) -> None:
    pid = register(store)
    done = store.claimed_recover(pid, {"class": "X"}, lambda *_: True, running=[])
    assert (done.retried, done.failed, done.suspects, done.handed_back) == ([], [], [], [])
    assert store.processes_list() == []
