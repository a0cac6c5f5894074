"""Job control with real processes: timeouts, cancelling running jobs, exact crash blame,
start rates, expiry, and the two-step Ctrl-C."""

from __future__ import annotations

import signal
import subprocess
import time
from collections import defaultdict
from datetime import UTC, timedelta

import pytest

import stalwart
from stalwart import JobStatus
from stalwart.testing import drain

from .fleet import Fleet, stop
from .helpers import wait_for

pytestmark = pytest.mark.slow


def ended(fleet: Fleet, *ids: int) -> bool:
    return all(fleet.status(i) in (JobStatus.SUCCESSFUL, JobStatus.FAILED) for i in ids)


def seconds_to_failure(fleet: Fleet, job_id: int) -> float:
    """From the attempt's start to the time its failure was recorded."""
    result = fleet.app.get_result(job_id)
    [start] = fleet.started_at(job_id)[-1:]
    assert result.errors and result.errors[-1].at is not None
    return result.errors[-1].at.replace(tzinfo=UTC).timestamp() - start


def test_timeouts_stop_python_async_and_stuck_jobs_others_carry_on(fleet: Fleet) -> None:
    fleet.configure(processes=1, threads=4, timeout_grace=2)
    busy = fleet.enqueue("proc.busy", 30)
    aslow = fleet.enqueue("proc.async_sleep", 30)
    stuck = fleet.enqueue("proc.stuck", 60)
    others = [fleet.enqueue("proc.noop", i) for i in range(20)]
    sup = fleet.start("--drain")
    out, _ = sup.communicate(timeout=120)
    assert sup.returncode == 0, out
    for job_id in (busy, aslow, stuck):
        result = fleet.app.get_result(job_id)
        assert result.status is JobStatus.FAILED, out
        assert result.errors[-1].exception_class == "stalwart.errors.JobTimeout"
        assert "ran past its timeout of 1 s" in result.errors[-1].message
        assert result.attempts == 1 and result.crashes == 0
    assert seconds_to_failure(fleet, busy) < 3
    assert seconds_to_failure(fleet, aslow) < 2
    # Stuck in C: given up after timeout + timeout_grace, its worker recycled.
    assert seconds_to_failure(fleet, stuck) < 1 + 2 + 2
    assert "recycling this worker process" in out
    for job_id in others:
        result = fleet.app.get_result(job_id)
        assert (result.status, result.crashes) == (JobStatus.SUCCESSFUL, 0)
    # The busy loop's traceback shows where it was interrupted.
    assert "while time.monotonic() < deadline" in fleet.app.get_result(busy).errors[-1].traceback


@pytest.mark.parametrize("task", ["proc.polite", "proc.spin", "proc.async_wait"])
def test_cancelling_a_running_job_ends_it_failed_and_never_retried(fleet: Fleet, task: str) -> None:
    fleet.configure(processes=1, threads=2)
    job = fleet.enqueue(task, 30)
    sup = fleet.start()
    try:
        wait_for(lambda: fleet.started_at(job), what="the job to start")
        began = time.monotonic()
        assert fleet.app.cancel_job(job) is True
        wait_for(lambda: fleet.status(job) is JobStatus.FAILED, 10, what="the cancel")
        assert time.monotonic() - began < 2.5  # within 2 s, give or take a poll
        result = fleet.app.get_result(job)
        assert result.errors[-1].exception_class == "stalwart.errors.Cancelled"
        assert result.attempts == 1
        time.sleep(0.5)  # nothing runs it again, though its Retry allows 3 attempts
        assert len(fleet.started_at(job)) == 1
        assert fleet.status(job) is JobStatus.FAILED
        assert fleet.app.cancel_job(job) is False  # ended: nothing to cancel
    finally:
        out = stop(sup)
    assert sup.returncode == 0, out


def test_a_crasher_is_blamed_alone_and_spares_the_innocent(fleet: Fleet) -> None:
    fleet.configure(processes=1, threads=5, prefetch=20)
    healthy = [fleet.enqueue("proc.sleep", 1) for _ in range(20)]
    crasher = fleet.enqueue("proc.crasher")
    healthy += [fleet.enqueue("proc.sleep", 1) for _ in range(20)]
    sup = fleet.start("--drain")
    out, _ = sup.communicate(timeout=240)
    assert sup.returncode == 0, out
    result = fleet.app.get_result(crasher)
    assert result.status is JobStatus.FAILED, out
    assert result.crashes == 3  # max_crashes, each crash while it ran alone
    assert [e.exception_class for e in result.errors] == ["stalwart.errors.ProcessExited"] * 3
    assert "crash" in {h.event for h in result.history}
    for job_id in healthy:
        r = fleet.app.get_result(job_id)
        assert (r.status, r.crashes) == (JobStatus.SUCCESSFUL, 0), (job_id, r.history)
    # Some healthy jobs were running beside the crasher: suspects, then innocent.
    suspects = [
        i for i in healthy if any(h.event == "suspect" for h in fleet.app.get_result(i).history)
    ]
    assert suspects, out


def test_a_rate_holds_in_every_window_and_keys_do_not_wait_on_each_other(fleet: Fleet) -> None:
    fleet.configure(processes=2, threads=5)
    limited = [fleet.enqueue("proc.rated", "one") for _ in range(40)]
    free = [fleet.enqueue("proc.rated", f"k{k}") for k in range(200) for _ in range(3)]
    sup = fleet.start("--drain")
    out, _ = sup.communicate(timeout=180)
    assert sup.returncode == 0, out
    # The recorded start times (each the moment its start was granted).
    starts: dict[str, list[float]] = defaultdict(list)
    for job_id in limited + free:
        result = fleet.app.get_result(job_id)
        assert result.started_at is not None
        starts[result.args[0]].append(result.started_at.replace(tzinfo=UTC).timestamp())
    assert len(starts["one"]) == 40 and len(fleet.started_at(limited[0])) == 1
    for key, times in starts.items():
        times.sort()
        # Any window of 1 s holds at most 5 starts: the 6th after any start is >= 1 s on.
        assert all(b - a >= 1.0 - 1e-5 for a, b in zip(times, times[5:], strict=False)), key
    assert {fleet.status(i) for i in limited + free} == {JobStatus.SUCCESSFUL}

    # The one key's line held jobs back; 200 keys of 3 jobs each stay under their rate:
    # none of them was held back by another's.
    def waited(job_id: int) -> bool:
        return any(h.event == "rate" for h in fleet.app.get_result(job_id).history)

    assert sum(waited(i) for i in limited) >= 30
    assert [i for i in free if waited(i)] == []


def test_two_step_ctrl_c_hands_running_jobs_back_with_a_record(fleet: Fleet) -> None:
    fleet.configure(processes=1, threads=2, shutdown_timeout=60)
    jobs = [fleet.enqueue("proc.sleep", 30) for _ in range(2)]
    sup = fleet.start()
    assert sup.stdout is not None
    wait_for(lambda: all(fleet.started_at(j) for j in jobs), what="both jobs to start")
    sup.send_signal(signal.SIGINT)
    # The fleet's output is read as it comes (tests/fleet.py): look at what it said.
    wait_for(lambda: "stopping" in sup.output(), 10, what="the stopping line")
    line = next(ln for ln in sup.output().splitlines() if "stopping" in ln)
    assert "stopping: 2 job(s) running; waiting up to 60 s" in line
    assert "Ctrl-C again" in line
    began = time.monotonic()
    sup.send_signal(signal.SIGINT)
    try:
        sup.wait(timeout=5)
    except subprocess.TimeoutExpired:
        raise AssertionError("the second Ctrl-C did not stop the fleet") from None
    assert time.monotonic() - began < 2.5
    for job_id in jobs:
        result = fleet.app.get_result(job_id)
        assert result.status is JobStatus.READY
        assert (result.interruptions, result.crashes, result.attempts) == (1, 0, 0)
        [event] = result.history
        assert event.event == "interrupted" and "second Ctrl-C" in event.detail


def test_expired_jobs_fail_instead_of_running_late(app: stalwart.App) -> None:
    ran: list[int] = []

    @app.task(expires=timedelta(seconds=2))
    def report(n: int) -> None:
        ran.append(n)

    on_time = report.enqueue(1)
    late = report.using(run_after=timedelta(seconds=3)).enqueue(2)
    later = report.using(expires=timedelta(hours=1), run_after=timedelta(seconds=3)).enqueue(3)
    drain(app)
    assert ran == [1, 3]
    assert app.get_result(on_time.id).status is JobStatus.SUCCESSFUL
    result = app.get_result(late.id)
    assert (result.status, result.attempts) == (JobStatus.FAILED, 0)
    assert result.errors[-1].exception_class == "stalwart.errors.Expired"
    assert app.get_result(later.id).status is JobStatus.SUCCESSFUL
