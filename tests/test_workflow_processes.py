"""Workflows under real `stalwart start` fleets (3 worker processes x 5 threads): batch
callbacks exactly once, failures, fan-out, dependencies, chains, a SIGKILLed worker."""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest
from sqlalchemy import select

from stalwart import BatchStatus, JobStatus
from stalwart.store import JobRow, schema

from .apps import procapp
from .fleet import Fleet, stop
from .helpers import wait_for

pytestmark = pytest.mark.slow


def callbacks_run(fleet: Fleet) -> Counter[tuple[str, int]]:
    """How often each (callback kind, batch id) ran."""
    return Counter(
        (event[3:], int(key)) for event, _, _, _, key in fleet.timed_events() if event[:3] == "cb_"
    )


def callback_jobs(fleet: Fleet) -> dict[tuple[str, int], list[JobRow]]:
    """The callback jobs enqueued, by (kind, batch id)."""
    with fleet.app.store.engine.connect() as conn:
        q = select(schema.jobs.c.id).where(schema.jobs.c.task_name == "proc.batch_callback")
        ids = list(conn.execute(q).scalars())
    out: dict[tuple[str, int], list[JobRow]] = {}
    for row in fleet.app.store.jobs_get(ids):
        kind, batch_id = json.loads(row.args)[0], json.loads(row.kwargs)["batch_id"]
        out.setdefault((kind, batch_id), []).append(row)
    return out


def batch_with_callbacks(fleet: Fleet) -> object:
    cb = procapp.batch_callback
    return fleet.app.batch(
        on_success=cb.prepare("success"),
        on_finish=cb.prepare("finish"),
        on_failure=cb.prepare("failure"),
    )


def drain(fleet: Fleet, timeout: float = 300) -> str:
    sup = fleet.start("--drain")
    out, _ = sup.communicate(timeout=timeout)
    assert sup.returncode == 0, out
    return out


def test_twenty_batches_of_1000_no_op_jobs_run_each_callback_exactly_once(
    fleet: Fleet,
) -> None:
    # Prefetch as by default: completions come in batches, as users' do (and with
    # prefetch 0 the 20,000 jobs took 100 s on SQLite in the parallel suite).
    fleet.configure(processes=3, threads=5, prefetch="auto")
    ids = []
    for _ in range(20):
        with batch_with_callbacks(fleet) as batch:  # type: ignore[attr-defined]
            fleet.app.enqueue_many(procapp.tick, [((i,), {}) for i in range(1000)])
        ids.append(batch.id)
    out = drain(fleet)
    ran = callbacks_run(fleet)
    enqueued = callback_jobs(fleet)
    for batch_id in ids:
        result = fleet.app.get_batch(batch_id)
        assert (result.total, result.succeeded, result.pending) == (1000, 1000, 0), result
        # Enqueued exactly once each (the guarantee, by construction) ...
        mine = {kind: rows for (kind, b), rows in enqueued.items() if b == batch_id}
        assert sorted(mine) == ["finish", "success"], mine
        assert all(len(rows) == 1 for rows in mine.values()), mine
        # ... and each ran once: a second run only after its process died while it
        # ran (at least once, like any job), which its job row then says.
        for kind in ("success", "finish"):
            runs = ran[(kind, batch_id)]
            [row] = mine[kind]
            assert runs == 1 or (runs > 1 and (row.crashes or row.history)), (
                kind,
                row,
                out[-2000:],
            )
    assert sum(ran.values()) >= 40


def test_failures_and_fan_out_under_a_fleet(fleet: Fleet) -> None:
    fleet.configure(processes=3, threads=5)
    with batch_with_callbacks(fleet) as failing:  # type: ignore[attr-defined]
        fleet.app.enqueue_many([procapp.fail_if.prepare(i % 10 == 0) for i in range(100)])
    with batch_with_callbacks(fleet) as fanning:  # type: ignore[attr-defined]
        fleet.app.enqueue("proc.fan_out", (50,))
    drain(fleet)
    ran = callbacks_run(fleet)
    assert ran[("failure", failing.id)] == 1 and ran[("finish", failing.id)] == 1
    assert ran[("success", failing.id)] == 0
    result = fleet.app.get_batch(failing.id)
    assert (result.succeeded, result.failed, result.status) == (90, 10, BatchStatus.FAILED)
    fanned = fleet.app.get_batch(fanning.id)
    assert (fanned.total, fanned.succeeded) == (51, 51)
    assert ran[("success", fanning.id)] == 1 and ran[("finish", fanning.id)] == 1
    # The callbacks started after the last of the 50 added jobs had finished.
    [success] = [c.job_id for c in fanned.callbacks if c.on == "success"]
    assert success is not None
    started = fleet.app.get_result(success).started_at
    assert started is not None
    last = max(fleet.app.get_result(i).finished_at or started for i in range(success - 51, success))
    assert last <= started


def test_dependencies_and_a_chain_of_100_under_a_fleet(fleet: Fleet) -> None:
    fleet.configure(processes=3, threads=5)
    app = fleet.app
    step = procapp.step
    a = app.enqueue(step, ("a",))
    b = app.enqueue(step.using(after=[a]), ("b",))
    c = app.enqueue(step.using(after=[a]), ("c",))
    d = app.enqueue(step.using(after=[b, c]), ("d",))
    bad = app.enqueue(procapp.fail_if, (True,))
    failed = app.enqueue(step.using(after=[bad]), ("never",))
    runs = app.enqueue(step.using(after=[bad], on_dependency_failure="run"), ("anyway",))
    chain = app.chain(*(procapp.add.prepare(n) for n in range(1, 101)))
    drain(fleet)
    assert app.get_result(d.id).return_value == {"name": "d", "seen": ["b", "c"]}
    assert app.get_result(b.id).return_value == {"name": "b", "seen": ["a"]}
    result = app.get_result(failed.id)
    assert result.status is JobStatus.FAILED
    assert result.errors[-1].exception_class == "stalwart.errors.DependencyFailed"
    assert app.get_result(runs.id).status is JobStatus.SUCCESSFUL
    assert app.get_result(chain[-1].id).return_value == sum(range(1, 101))
    order = [int(key) for event, _, _, _, key in fleet.timed_events() if event == "add"]
    assert order == list(range(1, 101))
    steps = [key for event, _, _, _, key in fleet.timed_events() if event == "step"]
    assert steps.index("a") < min(steps.index("b"), steps.index("c"))
    assert max(steps.index("b"), steps.index("c")) < steps.index("d")
    assert "never" not in steps


# Serial: the kill must land while the worker runs jobs of the batch; under the load
# of the parallel suite the batch once ran ahead of it (CI, MariaDB).
@pytest.mark.serial
def test_a_worker_sigkilled_mid_batch_and_the_callbacks_still_run_once(fleet: Fleet) -> None:
    fleet.configure(processes=3, threads=5)
    with batch_with_callbacks(fleet) as batch:  # type: ignore[attr-defined]
        fleet.app.enqueue_many(procapp.sleep, [((0.3,), {}) for _ in range(300)])
    sup = fleet.start()
    try:
        wait_for(
            lambda: fleet.app.get_batch(batch.id).succeeded >= 30, what="the batch to be going"
        )
        victim: list[int] = []

        def busy_worker() -> bool:
            # A worker running a job of the batch that started under 100 ms ago (each
            # runs 300 ms), so the kill lands while it runs. A claimed row alone is not
            # enough: it may be prefetched, or finished and waiting for its commit.
            now, events = time.time(), fleet.timed_events()
            started = {job: (pid, at) for ev, job, pid, at, _ in events if ev == "start"}
            for ev, job, *_ in events:
                if ev == "end":
                    started.pop(job, None)
            fresh = [pid for pid, at in started.values() if now - at < 0.1]
            victim[:] = fresh[:1]
            return bool(victim)

        wait_for(busy_worker, what="a worker running jobs")
        os.kill(victim[0], signal.SIGKILL)
        wait_for(
            lambda: fleet.app.get_batch(batch.id).finished_at is not None,
            timeout=120,
            what="the batch to finish",
        )
        wait_for(lambda: callbacks_run(fleet)[("finish", batch.id)] >= 1, what="on_finish")
    finally:
        out = stop(sup)
    assert sup.returncode == 0, out
    result = fleet.app.get_batch(batch.id)
    assert (result.total, result.pending, result.succeeded + result.failed) == (300, 0, 300)
    ran = callbacks_run(fleet)
    assert ran[("finish", batch.id)] == 1
    assert ran[("success", batch.id)] + ran[("failure", batch.id)] == 1
    # The kill hit jobs of the batch while they ran: they were run again, alone.
    hit = [j for j in fleet.app.store.batch_jobs(batch.id, 1000) if j.crashes or j.history]
    assert hit, "the SIGKILL hit no running job of the batch"
