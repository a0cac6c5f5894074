"""Recurring tasks: schedules, exactly-once runs across schedulers, missed runs."""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

import stalwart
from stalwart.config import Config, RecurringConfig
from stalwart.processes.scheduler import Scheduler
from stalwart.schedules import parse_schedule, run_times_between
from stalwart.testing import drain

from .helpers import recurring_runs, running


def ticker_app(db_url: str, **config: object) -> stalwart.App:
    app = stalwart.App(config=Config(database_url=db_url, source="tests", **config))  # type: ignore[arg-type]

    @app.task(name="tick")
    def tick(label: str = "") -> str:
        return label

    return app


def run_times(app: stalwart.App, key: str) -> list[datetime]:
    return sorted(t for t, _ in recurring_runs(app.store, key))


def test_schedules_parse_phrases_and_cron_in_a_time_zone() -> None:
    at = datetime(2026, 3, 2, 8, 59, 59, tzinfo=UTC)  # a Monday
    assert parse_schedule("every second").next_after(at) == at + timedelta(seconds=1)
    assert parse_schedule("every 5 minutes").next_after(at) == datetime(
        2026, 3, 2, 9, 0, tzinfo=UTC
    )
    assert parse_schedule("every day at 9am").next_after(at) == datetime(
        2026, 3, 2, 9, 0, tzinfo=UTC
    )
    assert parse_schedule("every day at 9am", "Europe/Paris").next_after(at) == datetime(
        2026, 3, 3, 8, 0, tzinfo=UTC
    )
    assert parse_schedule("every monday at 10:30").next_after(at) == datetime(
        2026, 3, 2, 10, 30, tzinfo=UTC
    )
    assert parse_schedule("every weekday at 6pm").next_after(at) == datetime(
        2026, 3, 2, 18, 0, tzinfo=UTC
    )
    assert parse_schedule("*/15 * * * *").next_after(at) == datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    assert (
        len(run_times_between(parse_schedule("every 10 seconds"), at, at + timedelta(minutes=1)))
        == 6
    )
    for bad, why in [
        ("every fortnight", "neither a phrase"),
        ("61 * * * *", "not a valid cron line"),
        ("every day at 25:00", "not a time"),
    ]:
        with pytest.raises(ValueError, match=why):
            parse_schedule(bad)
    with pytest.raises(ValueError, match="unknown time zone"):
        parse_schedule("every day at 9am", "Mars/Olympus")


def test_three_schedulers_enqueue_exactly_one_job_per_second(db_url: str) -> None:
    apps = [ticker_app(db_url) for _ in range(3)]
    apps[0].recurring.add("every-second", "tick", "every second", args=("s",))
    schedulers = [Scheduler(app, missed_after=timedelta(seconds=2)) for app in apps]
    started = datetime.now(UTC)
    with running(*schedulers):
        time.sleep(15)
    ended = datetime.now(UTC)
    times = run_times(apps[0], "every-second")
    seconds = [t.replace(tzinfo=UTC) for t in times]
    # One run per whole second, no gaps, no duplicates (the rows are unique, and the
    # jobs are one per row).
    assert len(seconds) == len(set(seconds))
    assert all(b - a == timedelta(seconds=1) for a, b in itertools.pairwise(seconds))
    expected = int((ended - started).total_seconds())
    assert expected - 1 <= len(seconds) <= expected + 1
    jobs = [job_id for _, job_id in recurring_runs(apps[0].store, "every-second")]
    assert len(jobs) == len(set(jobs)) == len(seconds) and None not in jobs
    # All three did work: the winner of each second varies.
    assert sum(s.enqueued for s in schedulers) == len(seconds)
    assert sum(1 for s in schedulers if s.enqueued) >= 2
    for app in apps:
        app.close()


@pytest.mark.parametrize("policy", ["skip", "latest", "all"])
def test_missed_runs_follow_the_policy(db_url: str, policy: str) -> None:
    app = ticker_app(db_url)
    app.recurring.add("t", "tick", "every second", missed=policy, missed_window=60)
    with running(Scheduler(app, missed_after=timedelta(seconds=0.5), refresh_every=0.5)):
        time.sleep(2.2)
    before = run_times(app, "t")
    time.sleep(4)  # no scheduler: about four runs come due
    restarted = datetime.now(UTC)
    with running(Scheduler(app, missed_after=timedelta(seconds=0.5), refresh_every=0.5)):
        time.sleep(1.5)
    runs_after = sorted(recurring_runs(app.store, "t"))[len(before) :]
    after = [t.replace(tzinfo=UTC) for t, _ in runs_after]
    # Runs after the last one before the stop (a run due in the instant of stopping
    # belongs to the gap too), up to the restarted scheduler's first pass less
    # missed_after: the runs it found missed. The pass is when it enqueued its first
    # job (under load it can come a second or more after `restarted`).
    last = before[-1].replace(tzinfo=UTC)
    first_pass = min(app.get_result(job).enqueued_at for _, job in runs_after if job is not None)
    cut = first_pass.replace(tzinfo=UTC) - timedelta(seconds=0.5)
    gap = [t for t in after if last < t < cut]
    whole_gap = run_times_between(parse_schedule("every second"), last, cut)
    assert len(whole_gap) >= 3
    if policy == "skip":
        assert gap == []
    elif policy == "latest":
        assert gap == [whole_gap[-1]]
    else:
        assert gap == whole_gap
    # After the restart, it runs on time again.
    assert any(t >= restarted - timedelta(seconds=0.5) for t in after)
    app.close()


def test_missed_window_bounds_catching_up(db_url: str) -> None:
    app = ticker_app(db_url)
    app.recurring.add("w", "tick", "every second", missed="all", missed_window=2)
    with running(Scheduler(app, missed_after=timedelta(seconds=0.5), refresh_every=0.5)):
        time.sleep(1.2)
    count = len(run_times(app, "w"))
    time.sleep(5)
    with running(Scheduler(app, missed_after=timedelta(seconds=0.5), refresh_every=0.5)):
        time.sleep(0.3)
    caught_up = len(run_times(app, "w")) - count
    assert 1 <= caught_up <= 3  # only the last 2 s of the 5 s gap
    app.close()


def test_static_tasks_from_config_and_runtime_tasks(db_url: str) -> None:
    static = (
        RecurringConfig(
            key="nightly", schedule="every day at 3am", task="tick", kwargs={"label": "n"}
        ),
        RecurringConfig(key="cmd", schedule="every hour", command="x = 1 + 1"),
    )
    app = ticker_app(db_url, recurring=static)
    app.recurring.add("dynamic", "tick", "every 10 minutes", queue_name="low", priority=-5)
    scheduler = Scheduler(app)
    with running(scheduler):
        deadline = time.monotonic() + 10
        while len(app.recurring.list()) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    tasks = {t.key: t for t in app.recurring.list()}
    assert set(tasks) == {"nightly", "cmd", "dynamic"}
    assert tasks["nightly"].static and not tasks["dynamic"].static
    assert (tasks["dynamic"].queue_name, tasks["dynamic"].priority) == ("low", -5)
    job = app.recurring.run_now("dynamic")
    assert (job.task_name, job.queue_name, job.priority) == ("tick", "low", -5)
    cmd = app.recurring.run_now("cmd")
    assert cmd.task_name == "stalwart.command"
    drain(app)
    assert app.get_result(cmd.id).status is stalwart.JobStatus.SUCCESSFUL
    assert app.recurring.remove("dynamic") is True
    assert app.recurring.remove("dynamic") is False
    with pytest.raises(stalwart.UnknownTaskError):
        app.recurring.add("x", "no.such.task", "every minute")
    with pytest.raises(ValueError, match="neither a phrase"):
        app.recurring.add("x", "tick", "whenever")
    # A config without "cmd" removes it; run-time tasks are not touched by config sync.
    app.recurring.add("dynamic2", "tick", "every minute")
    app.store.recurring_sync_static([])
    assert {t.key for t in app.recurring.list()} == {"dynamic2"}
    app.close()


def test_jobs_counted_per_run(db_url: str) -> None:
    app = ticker_app(db_url)
    app.recurring.add("fast", "tick", "every second", args=("f",))
    with running(Scheduler(app)):
        time.sleep(2.5)
    runs = recurring_runs(app.store, "fast")
    assert 2 <= len(runs) <= 3
    results = [app.get_result(job_id) for _, job_id in runs if job_id]
    assert Counter(r.task_name for r in results) == {"tick": len(runs)}
    assert all(r.args == ["f"] for r in results)
    app.close()


def test_a_command_job_runs_only_code_from_the_loaded_config(db_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    static = (
        RecurringConfig(
            key="touch", schedule="every hour", command=f"open({str(marker)!r}, 'w').close()"
        ),
    )
    app = ticker_app(db_url, recurring=static)
    good = app.recurring.run_now("touch")
    # The job row carries the key only, never the code.
    assert good.args == ["touch"]
    # Anyone able to write a job row by name gets nothing run: a key not configured fails,
    # and Python text in the arguments is only ever read as a key.
    evil = app.enqueue("stalwart.command", [f"open({str(marker) + '-evil'!r}, 'w').close()"])
    unknown = app.enqueue("stalwart.command", ["nightly-report"])
    drain(app)
    assert marker.exists() and not Path(str(marker) + "-evil").exists()
    assert app.get_result(good.id).status is stalwart.JobStatus.SUCCESSFUL
    for job in (evil, unknown):
        result = app.get_result(job.id)
        assert result.status is stalwart.JobStatus.FAILED
        assert result.errors[-1].exception_class == "stalwart.errors.CommandNotConfigured"
        assert "nothing was run" in result.errors[-1].message
    app.close()
