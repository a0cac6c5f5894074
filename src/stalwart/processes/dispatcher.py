"""The dispatcher: moves due scheduled jobs to ready (and jobs over a start rate, as
starts free), and keeps the tables trim."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseUnavailable
from .base import Actor

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.dispatcher")

# Finished jobs older than `clear_finished_jobs_after` are deleted this often.
CLEAR_FINISHED_EVERY = 300.0
# How often the queue tables' dead rows are checked (and vacuumed past a threshold).
VACUUM_EVERY = 30.0


class Dispatcher(Actor):
    kind = "dispatcher"

    def __init__(
        self,
        app: App,
        *,
        polling_interval: float = 1.0,
        batch_size: int = 500,
        concurrency_maintenance_interval: float = 60.0,
        name: str | None = None,
        supervisor_id: int | None = None,
    ) -> None:
        super().__init__(app, name=name, supervisor_id=supervisor_id)
        self.polling_interval = polling_interval
        self.batch_size = batch_size
        self._next_clear = time.monotonic() + CLEAR_FINISHED_EVERY
        self.concurrency_interval = concurrency_maintenance_interval
        self._next_vacuum = time.monotonic() + VACUUM_EVERY
        self._next_concurrency = time.monotonic()
        self.dispatched = 0

    def metadata(self) -> dict[str, Any]:
        return {"polling_interval": self.polling_interval, "batch_size": self.batch_size}

    def run(self) -> None:
        self.register()
        log.info("%s started: batch_size=%d", self.name, self.batch_size)
        try:
            while not self.stopping.is_set():
                moved = self.dispatch_once()
                if moved < self.batch_size:
                    self.sleep(self.polling_interval)
        finally:
            self.deregister()

    def dispatch_once(self) -> int:
        try:
            moved = self.store.scheduled_dispatch_due(self.batch_size)
            # Lines of jobs over a start rate: their heads go when starts free.
            moved += self.store.throttled_release(self.batch_size)
            # Dependents enqueued beside a running dependency that has ended since.
            moved += self.store.waiting_recheck(self.batch_size)
            self._maintain()
        except DatabaseUnavailable as exc:
            self.outage(exc)
            return 0
        except Exception as exc:  # never die of an unexpected error: log, wait, go on
            log.exception("%s: dispatch failed", self.name)
            self.outage(exc)
            return 0
        self.recovered()
        self.dispatched += moved
        return moved

    def _maintain(self) -> None:
        if time.monotonic() >= self._next_concurrency:
            self._next_concurrency = time.monotonic() + self.concurrency_interval
            expired, unblocked = self.store.semaphores_maintain(self.batch_size)
            self.store.cancellations_prune()
            if expired or unblocked:
                log.info(
                    "%s: %d semaphore(s) expired, %d job(s) unblocked",
                    self.name,
                    expired,
                    unblocked,
                )
        if time.monotonic() >= self._next_vacuum:
            self._next_vacuum = time.monotonic() + VACUUM_EVERY
            vacuumed = self.store.queue_tables_vacuum()
            if vacuumed:
                log.info("%s: vacuumed %s", self.name, ", ".join(vacuumed))
        if not self.app.config.preserve_finished_jobs or time.monotonic() < self._next_clear:
            return
        self._next_clear = time.monotonic() + CLEAR_FINISHED_EVERY
        age = timedelta(seconds=self.app.config.clear_finished_jobs_after)
        before = self.store.clock.now() - age
        cleared = self.store.jobs_clear_finished(before)
        if cleared:
            log.info("%s: cleared %d finished job(s)", self.name, cleared)
