"""The scheduler: enqueues recurring tasks at their times.

Any number of schedulers may run (one per supervisor): each run is a unique
(task, run time) row, so exactly one of them enqueues it. Runs that came due while no
scheduler was up follow each task's ``missed`` policy: ``skip`` (the default, like
Solid Queue), ``latest`` (run once for the lot) or ``all`` (catch up, like
Sidekiq-cron), within ``missed_window``.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseUnavailable
from ..observe.enqueue import count_enqueued
from ..recurring import Recurring, RecurringTask, row_from_config
from ..schedules import Schedule, run_times_between
from .base import Actor

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.scheduler")

# A run time this much in the past counts as missed (not merely a little late).
MISSED_AFTER = timedelta(seconds=5)
# Tasks added or removed at run time are seen within this long.
REFRESH_EVERY = 5.0


class Scheduler(Actor):
    kind = "scheduler"

    def __init__(
        self,
        app: App,
        *,
        name: str | None = None,
        supervisor_id: int | None = None,
        missed_after: timedelta = MISSED_AFTER,
        refresh_every: float = REFRESH_EVERY,
    ) -> None:
        super().__init__(app, name=name, supervisor_id=supervisor_id)
        self.missed_after = missed_after
        self.refresh_every = refresh_every
        self.recurring = Recurring(app)
        self.tasks: dict[str, tuple[RecurringTask, Schedule]] = {}
        self.cursors: dict[str, datetime] = {}
        self.enqueued = 0
        self._next_refresh = datetime.min.replace(tzinfo=UTC)

    def metadata(self) -> dict[str, Any]:
        return {"static_tasks": [t.key for t in self.app.config.recurring]}

    def run(self) -> None:
        self.register()
        self.retrying(
            lambda: self.store.recurring_sync_static(
                [row_from_config(t) for t in self.app.config.recurring]
            )
        )
        log.info("%s started", self.name)
        try:
            while not self.stopping.is_set():
                try:
                    # The database's time: schedulers on hosts whose clocks differ
                    # agree on every run time (`store/clock.py`).
                    wait = self.tick(self.store.clock.now().replace(tzinfo=UTC))
                except DatabaseUnavailable as exc:
                    self.outage(exc)
                    continue
                except Exception as exc:  # never die of an unexpected error
                    log.exception("%s: tick failed", self.name)
                    self.outage(exc)
                    continue
                self.recovered()
                self.sleep(wait)
        finally:
            self.deregister()

    def tick(self, now: datetime) -> float:
        """Enqueue what is due at ``now``; return how long to sleep."""
        if now >= self._next_refresh:
            self._refresh(now)
        for key, (task, schedule) in self.tasks.items():
            start = self.cursors.get(key, now)
            for run_at in self._due(task, run_times_between(schedule, start, now), now):
                self._enqueue(task, run_at)
            self.cursors[key] = now
        upcoming = [schedule.next_after(now) for _, schedule in self.tasks.values()]
        until = min([*upcoming, self._next_refresh]) - now
        return max(0.005, min(until.total_seconds(), self.refresh_every))

    def _due(self, task: RecurringTask, times: list[datetime], now: datetime) -> list[datetime]:
        on_time = [t for t in times if now - t <= self.missed_after]
        window = timedelta(seconds=task.missed_window)
        missed = [t for t in times if now - t > self.missed_after and now - t <= window]
        if missed:
            kept = {"skip": [], "latest": missed[-1:], "all": missed}[task.missed]
            log.info(
                "%s: %s missed %d run(s) (%s): enqueuing %d",
                self.name,
                task.key,
                len(missed),
                task.missed,
                len(kept),
            )
            return [*kept, *on_time]
        return on_time

    def _refresh(self, now: datetime) -> None:
        tasks = self.recurring.list()
        last_runs = self.store.recurring_last_runs()
        # Only once the database answered: a failed refresh is tried again at the next
        # tick, which so talks to the database (a tick that did not must not count as
        # the database being back).
        self._next_refresh = now + timedelta(seconds=self.refresh_every)
        fresh: dict[str, tuple[RecurringTask, Schedule]] = {}
        for task in tasks:
            try:
                fresh[task.key] = (task, task.parsed())
            except ValueError as exc:
                log.error("%s: recurring task %s skipped: %s", self.name, task.key, exc)
                continue
            if task.key not in self.cursors:
                # Start from the last run anyone enqueued (runs missed since count as
                # missed); a task never run starts now.
                last = last_runs.get(task.key)
                self.cursors[task.key] = last.replace(tzinfo=UTC) if last else now
        self.tasks = fresh

    def _enqueue(self, task: RecurringTask, run_at: datetime) -> None:
        name, args, kwargs = Recurring.job_of(task)
        app_task = self.app.tasks.get(name)
        if app_task is None:
            log.error("%s: recurring task %s names unknown task %s", self.name, task.key, name)
            return
        t = app_task.using(queue_name=task.queue_name, priority=task.priority)
        job = self.app.new_job(t, args, kwargs)
        job_id = self.store.recurring_enqueue(task.key, run_at.replace(tzinfo=None), job)
        if job_id is not None:
            self.enqueued += 1
            count_enqueued(job.queue_name, job.task_name)
            log.debug("%s: enqueued %s for %s as job %d", self.name, task.key, run_at, job_id)
