"""An idle fleet nearly free: idle workers poll less and less often, and start over at
once on work or on a notification; on PostgreSQL every insert into ready notifies.

Assertions are on the worker's own record of its waits, never on wall time."""

from __future__ import annotations

import threading

import pytest

import stalwart
from stalwart import JobStatus
from stalwart.processes import Worker
from stalwart.processes.worker import IdlePolls
from stalwart.store import NewJob, QueueSelector, open_store, utcnow

from .helpers import running, wait_for


def test_idle_waits_double_up_to_the_cap_and_start_over_on_work() -> None:
    idle = IdlePolls(0.1, 8, 30.0)
    waits = [idle.polled(found=False, listening=False) for _ in range(6)]
    assert waits == pytest.approx([0.1, 0.2, 0.4, 0.8, 0.8, 0.8])
    assert idle.polled(found=True, listening=False) == pytest.approx(0.1)
    # With a LISTEN connection up, the safety-net poll is notify_polling_interval.
    waits = [idle.polled(found=False, listening=True) for _ in range(12)]
    assert max(waits) == pytest.approx(30.0) and waits[0] == pytest.approx(0.1)
    idle.reset()  # a notification
    assert idle.polled(found=False, listening=True) == pytest.approx(0.1)
    assert idle.resets == 1


def test_an_idle_worker_backs_off_and_starts_over_when_work_comes(app: stalwart.App) -> None:
    done = threading.Event()

    @app.task(name="idle.work")
    def work() -> None:
        done.set()

    # No notification on any database here: a long notify interval would hide nothing.
    worker = Worker(
        app, threads=1, polling_interval=0.01, idle_backoff_cap=8, notify_polling_interval=0.08
    )
    with running(worker):
        wait_for(lambda: list(worker.idle.waits)[-2:] == [0.08, 0.08], 30, "backing off")
        assert _has_run(list(worker.idle.waits), [0.01, 0.02, 0.04, 0.08])
        seen = len(worker.idle.waits)
        job = work.enqueue()
        wait_for(done.is_set, 30, "the job")
        wait_for(lambda: app.get_result(job.id).status is JobStatus.SUCCESSFUL, 30, "its result")
        wait_for(lambda: len(worker.idle.waits) >= seen + 2, 30, "more polls")
        waits = list(worker.idle.waits)
    # After the job was found, the waits started over from polling_interval and grew.
    assert _has_run(waits[seen - 1 :], [0.08, 0.01]), (seen, waits)


def _has_run(waits: list[float], run: list[float]) -> bool:
    """Whether ``run`` occurs in ``waits`` as consecutive items."""
    rounded = [round(w, 6) for w in waits]
    return any(rounded[i : i + len(run)] == run for i in range(len(rounded)))


@pytest.mark.parametrize("backend", ["postgresql"])
def test_every_insert_into_ready_notifies_its_queue(db_url: str) -> None:
    store = open_store(db_url)
    heard: list[str] = []
    stopping = threading.Event()
    listener = store.ready_listener(heard.append, stopping)
    assert listener is not None
    listener.start()
    try:
        wait_for(lambda: listener.connected, 30, "the listener")
        [job_id] = store.jobs_enqueue([NewJob("t", "q1", 0, "[]", "{}", utcnow())])
        wait_for(lambda: "q1" in heard, 30, "the enqueue's notification")
        [claimed] = store.ready_claim(None, QueueSelector(("q1",)), 1)
        heard.clear()
        # A hand-back sends no notification of its own: the trigger does.
        assert store.claimed_release(None, [claimed.id]) == 1
        wait_for(lambda: "q1" in heard, 30, "the hand-back's notification")
        assert claimed.id == job_id
    finally:
        stopping.set()
        store.dispose()
