"""Workers and dispatchers against each database: running, failing, retrying, ordering."""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

import stalwart
from stalwart import JobStatus
from stalwart.config import Config
from stalwart.processes import Dispatcher, Worker
from stalwart.store import NewJob, QueueSelector, utcnow
from stalwart.testing import drain

from .helpers import count, running, wait_for


def test_sync_and_async_tasks_run_and_record_results(app: stalwart.App) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task
    async def amul(a: int, b: int) -> dict[str, int]:
        await asyncio.sleep(0.01)
        return {"product": a * b}

    j1, j2 = add.enqueue(2, 3), amul.enqueue(4, 5)
    assert drain(app) == 2
    r1, r2 = app.get_result(j1.id), app.get_result(j2.id)
    assert (r1.status, r1.return_value, r1.attempts) == (JobStatus.SUCCESSFUL, 5, 1)
    assert (r2.status, r2.return_value) == (JobStatus.SUCCESSFUL, {"product": 20})
    for r in (r1, r2):
        assert r.enqueued_at and r.started_at and r.finished_at
        assert r.enqueued_at <= r.started_at <= r.finished_at
        assert r.errors == []


def test_failure_records_class_message_and_traceback(app: stalwart.App) -> None:
    @app.task(queue_name="reports")
    def broken(report_id: int) -> None:
        raise ValueError(f"report {report_id} is broken")

    job = broken.enqueue(7)
    drain(app)
    result = app.get_result(job.id)
    assert result.status is JobStatus.FAILED
    assert result.attempts == 1 and result.finished_at is None
    [error] = result.errors
    assert error.exception_class == "ValueError"
    assert error.message == "report 7 is broken"
    assert 'raise ValueError(f"report {report_id} is broken")' in error.traceback
    assert error.at is not None
    counts = {q.name: q.counts() for q in app.store.queues_overview()}
    assert {s: n for s, n in counts["reports"].items() if n} == {"FAILED": 1}


def test_unknown_task_fails_the_job_and_the_worker_keeps_going(app: stalwart.App) -> None:
    @app.task
    def fine() -> str:
        return "ok"

    [ghost] = app.store.jobs_enqueue([NewJob("ghost.task", "default", 0, "[]", "{}", utcnow())])
    later = fine.enqueue()
    drain(app)
    failed = app.get_result(ghost)
    assert failed.status is JobStatus.FAILED
    assert failed.errors[0].exception_class == "stalwart.errors.UnknownTaskError"
    assert "no task named 'ghost.task'" in failed.errors[0].message
    assert app.get_result(later.id).status is JobStatus.SUCCESSFUL


def test_non_json_return_value_fails_the_job(app: stalwart.App) -> None:
    @app.task
    def returns_object() -> object:
        return object()

    job = returns_object.enqueue()
    drain(app)
    result = app.get_result(job.id)
    assert result.status is JobStatus.FAILED
    assert "return value of task" in result.errors[0].message
    assert "not JSON" in result.errors[0].message


def test_retry_until_success_keeps_each_error(app: stalwart.App) -> None:
    calls = Counter[str]()

    @app.task(retry=stalwart.Retry(attempts=3, backoff="constant", base=0, jitter=False))
    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise ConnectionError(f"try {calls['n']}")
        return "done"

    job = flaky.enqueue()
    drain(app)
    result = app.get_result(job.id)
    assert (result.status, result.return_value, result.attempts) == (
        JobStatus.SUCCESSFUL,
        "done",
        3,
    )
    assert [e.message for e in result.errors] == ["try 1", "try 2"]


def test_retries_run_out_then_the_job_fails(app: stalwart.App) -> None:
    @app.task(retry=stalwart.Retry(attempts=2, backoff="constant", base=0, jitter=False))
    def always() -> None:
        raise RuntimeError("nope")

    job = always.enqueue()
    drain(app)
    result = app.get_result(job.id)
    assert (result.status, result.attempts, len(result.errors)) == (JobStatus.FAILED, 2, 2)


def test_retry_waits_in_scheduled(app: stalwart.App) -> None:
    @app.task(retry=stalwart.Retry(attempts=2, backoff="constant", base=3600, jitter=False))
    def later() -> None:
        raise RuntimeError("not yet")

    job = later.enqueue()
    drain(app)
    result = app.get_result(job.id)
    assert result.status is JobStatus.SCHEDULED
    assert result.attempts == 1


def test_snooze_runs_again_later_without_counting_an_attempt(app: stalwart.App) -> None:
    seen = []

    @app.task
    def sleepy() -> str:
        seen.append(stalwart.current_job().attempt)
        if len(seen) == 1:
            raise stalwart.Snooze(2)
        return "awake"

    job = sleepy.enqueue()
    # Leave the snooze scheduled. Two seconds: under the parallel suite's load a drain
    # once outlasted a shorter snooze, and ran the job again (CI, MariaDB).
    drain(app, within=0)
    assert app.get_result(job.id).status is JobStatus.SCHEDULED
    time.sleep(2.05)
    drain(app)
    result = app.get_result(job.id)
    assert (result.status, result.return_value) == (JobStatus.SUCCESSFUL, "awake")
    assert result.attempts == 1 and result.errors == []
    assert seen == [1, 1]


def test_claim_order_is_priority_then_fifo(app: stalwart.App) -> None:
    order: list[int] = []

    @app.task
    def record(n: int) -> None:
        order.append(n)

    for n, priority in [(1, 0), (2, 10), (3, 0), (4, -5), (5, 10), (6, 100)]:
        record.using(priority=priority).enqueue(n)
    worker = Worker(app, threads=1, prefetch=0, polling_interval=0.01)
    with running(worker):
        wait_for(lambda: len(order) == 6)
    assert order == [6, 2, 5, 1, 3, 4]


def test_queue_list_order_prefix_and_star(app: stalwart.App) -> None:
    @app.task
    def noop() -> None: ...

    for queue in ["low", "mail.high", "critical", "mail.low", "other"]:
        noop.using(queue_name=queue).enqueue()

    def claimed_queues(patterns: tuple[str, ...], limit: int = 10) -> list[str]:
        jobs = app.store.ready_claim(None, QueueSelector(patterns), limit)
        app.store.claimed_release(None)
        return [j.queue_name for j in jobs]

    assert claimed_queues(("critical", "mail*")) == ["critical", "mail.high", "mail.low"]
    assert claimed_queues(("mail*", "critical"), limit=2) == ["mail.high", "mail.low"]
    assert sorted(claimed_queues(("*",))) == sorted(
        ["low", "mail.high", "critical", "mail.low", "other"]
    )
    assert claimed_queues(("nothing",)) == []
    # Overlapping patterns never claim a job twice.
    assert sorted(claimed_queues(("other", "*"))) == sorted(
        ["other", "low", "mail.high", "critical", "mail.low"]
    )


def test_prefix_pattern_treats_underscore_literally(app: stalwart.App) -> None:
    @app.task
    def noop() -> None: ...

    noop.using(queue_name="a_b").enqueue()
    noop.using(queue_name="axb").enqueue()
    jobs = app.store.ready_claim(None, QueueSelector(("a_*",)), 10)
    assert [j.queue_name for j in jobs] == ["a_b"]


def test_paused_queue_is_skipped_until_resumed(app: stalwart.App) -> None:
    ran: list[str] = []

    @app.task
    def record(queue: str) -> None:
        ran.append(queue)

    assert app.pause_queue("slow") is True
    assert app.pause_queue("slow") is False
    record.using(queue_name="slow").enqueue("slow")
    record.using(queue_name="fast").enqueue("fast")
    worker = Worker(app, queues=["slow", "*"], threads=2, polling_interval=0.01)
    with running(worker):
        wait_for(lambda: ran == ["fast"])
        time.sleep(0.2)
        assert ran == ["fast"]
        assert app.paused_queues() == {"slow"}
        assert app.resume_queue("slow") is True
        wait_for(lambda: sorted(ran) == ["fast", "slow"])


def test_scheduled_job_runs_once_due(app: stalwart.App) -> None:
    @app.task
    def tick() -> str:
        return "tick"

    # Due in 2 s, not sooner: under the parallel suite's load starting two actors can
    # take longer than a shorter delay, and the job would be due before the check.
    job = tick.using(run_after=timedelta(seconds=2)).enqueue()
    worker = Worker(app, threads=1, polling_interval=0.02)
    dispatcher = Dispatcher(app, polling_interval=0.05)
    with running(worker, dispatcher):
        time.sleep(0.2)
        assert app.get_result(job.id).status is JobStatus.SCHEDULED
        wait_for(lambda: app.get_result(job.id).status is JobStatus.SUCCESSFUL)
    result = app.get_result(job.id)
    assert result.started_at is not None and result.scheduled_at is not None
    assert result.started_at >= result.scheduled_at


def test_dispatcher_moves_due_jobs_in_batches(app: stalwart.App) -> None:
    @app.task
    def noop() -> None: ...

    app.enqueue_many(noop.using(run_after=timedelta(hours=1)), [((), {})] * 25)
    assert app.store.scheduled_dispatch_due(10) == 0
    later = utcnow() + timedelta(hours=2)
    assert app.store.scheduled_dispatch_due(10, now=later) == 10
    assert app.store.scheduled_dispatch_due(10, now=later) == 10
    assert app.store.scheduled_dispatch_due(10, now=later) == 5
    assert app.store.scheduled_dispatch_due(10, now=later) == 0
    assert count(app.store, "ready_executions") == 25


def test_concurrent_workers_run_every_job_exactly_once(app: stalwart.App) -> None:
    runs = Counter[int]()
    lock = threading.Lock()

    @app.task
    def record(n: int) -> None:
        with lock:
            runs[n] += 1

    app.enqueue_many(record, [((n,), {}) for n in range(600)])
    workers = [Worker(app, threads=3, prefetch=5, polling_interval=0.01) for _ in range(3)]
    with running(*workers):
        wait_for(lambda: not app.store.jobs_any_pending(), timeout=60)
    assert sorted(runs) == list(range(600))
    assert set(runs.values()) == {1}
    assert sum(w.jobs_done for w in workers) == 600


def test_not_preserving_finished_jobs_deletes_them(db_url: str) -> None:
    app = stalwart.App(config=Config(database_url=db_url, preserve_finished_jobs=False))

    @app.task
    def noop() -> None: ...

    @app.task
    def bad() -> None:
        raise ValueError("kept")

    ok, failed = noop.enqueue(), bad.enqueue()
    drain(app)
    with pytest.raises(stalwart.JobNotFound):
        app.get_result(ok.id)
    assert app.get_result(failed.id).status is JobStatus.FAILED
    app.close()


def test_clear_finished_jobs_keeps_recent_and_failed(app: stalwart.App) -> None:
    @app.task
    def noop() -> None: ...

    @app.task
    def bad() -> None:
        raise ValueError("kept")

    done = [noop.enqueue() for _ in range(5)]
    failed = bad.enqueue()
    drain(app)
    assert app.clear_finished_jobs(older_than=timedelta(hours=1)) == 0
    assert app.store.jobs_clear_finished(utcnow() + timedelta(seconds=1), batch_size=2) == 5
    for job in done:
        with pytest.raises(stalwart.JobNotFound):
            app.get_result(job.id)
    assert app.get_result(failed.id).status is JobStatus.FAILED


def test_retry_and_discard_failed_jobs(app: stalwart.App) -> None:
    fail = {"on": True}

    @app.task(queue_name="a")
    def sometimes() -> str:
        if fail["on"]:
            raise KeyError("missing")
        return "fixed"

    @app.task(queue_name="b")
    def never() -> None:
        raise OSError("disk")

    jobs = [sometimes.enqueue() for _ in range(3)]
    other = never.enqueue()
    drain(app)
    assert all(app.get_result(j.id).status is JobStatus.FAILED for j in [*jobs, other])
    fail["on"] = False
    assert app.retry_failed(error_class="KeyError") == 3
    drain(app)
    for j in jobs:
        result = app.get_result(j.id)
        assert (result.status, result.return_value, result.attempts) == (
            JobStatus.SUCCESSFUL,
            "fixed",
            2,
        )
        assert len(result.errors) == 1
    assert app.discard_failed(queue_name="b") == 1
    with pytest.raises(stalwart.JobNotFound):
        app.get_result(other.id)
    assert app.retry_failed() == 0


def test_shutdown_hands_waiting_jobs_back(app: stalwart.App) -> None:
    started = threading.Event()
    release = threading.Event()

    @app.task
    def slow() -> None:
        started.set()
        release.wait(5)

    jobs = [slow.enqueue() for _ in range(4)]
    worker = Worker(app, threads=1, prefetch=3, polling_interval=0.01, shutdown_timeout=5)
    thread = threading.Thread(target=worker.run)
    thread.start()
    assert started.wait(10)
    wait_for(lambda: count(app.store, "ready_executions") == 0)
    worker.stop()
    release.set()
    thread.join(10)
    statuses = Counter(app.get_result(j.id).status for j in jobs)
    assert statuses == {JobStatus.SUCCESSFUL: 1, JobStatus.READY: 3}
    assert app.store.claimed_by(None) == []


def test_queue_tables_are_vacuumed_past_a_dead_row_threshold(app: stalwart.App) -> None:
    @app.task
    def noop() -> None: ...

    app.enqueue_many(noop, [((), {})] * 2000)
    drain(app, threads=2, prefetch=200)
    if app.store.caps.autovacuum:  # PostgreSQL: claims left dead rows behind
        assert app.store.queue_tables_vacuum(min_dead=10**9) == []
        # Backends report their statistics within 10 s of going idle (and page pruning
        # on later reads may clean a table first): wait for either hot table.
        # The jobs table holds a dead row per finished job (2,000 of 2,000 live).
        hot = {"stalwart_ready_executions", "stalwart_claimed_executions"}
        vacuumed: set[str] = set()
        deadline = time.monotonic() + 30
        while not (vacuumed & hot and "stalwart_jobs" in vacuumed) and (
            time.monotonic() < deadline
        ):
            vacuumed |= set(app.store.queue_tables_vacuum(min_dead=0))
            time.sleep(0.5)
        assert vacuumed & hot
        assert "stalwart_jobs" in vacuumed
        assert vacuumed <= {
            "stalwart_jobs",
            "stalwart_ready_executions",
            "stalwart_claimed_executions",
            "stalwart_scheduled_executions",
            "stalwart_blocked_executions",
            "stalwart_semaphores",
            "stalwart_processes",
        }
    else:  # other databases have no per-table vacuum: nothing to do
        assert app.store.queue_tables_vacuum(min_dead=0) == []


def test_drain_waits_for_a_retry_that_is_due_soon_not_for_later_jobs(app: stalwart.App) -> None:
    calls: list[int] = []

    @app.task(retry=stalwart.Retry(attempts=2, base=0.05, jitter=False))
    def flaky() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")

    @app.task
    def later() -> None: ...

    job = flaky.enqueue()
    tomorrow = later.using(run_after=timedelta(days=1)).enqueue()
    began = time.monotonic()
    drain(app)
    assert time.monotonic() - began < 10
    assert app.get_result(job.id).status is JobStatus.SUCCESSFUL and len(calls) == 2
    assert app.get_result(tomorrow.id).status is JobStatus.SCHEDULED
