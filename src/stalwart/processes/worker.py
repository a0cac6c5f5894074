"""The worker: claims ready jobs up to its idle capacity and runs them.

Three parts run side by side: the claim loop (this actor's run()), the execution pool
(`pool.py`), and the completer (`completer.py`), which writes finished attempts in
batches every few milliseconds instead of one commit per job. `outcomes.py` turns what
an attempt returned or raised into what is recorded.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..context import JobInfo, run_async_inline, run_sync
from ..errors import DatabaseUnavailable
from ..serialization import loads
from ..store import ClaimedJob, QueueSelector
from .base import Actor
from .completer import Completer
from .outcomes import failed, succeeded
from .pool import ExecutionPool

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.worker")


class Worker(Actor):
    kind = "worker"

    def __init__(
        self,
        app: App,
        *,
        queues: Sequence[str] = ("*",),
        threads: int = 5,
        prefetch: int | None = None,
        polling_interval: float = 0.1,
        name: str | None = None,
        supervisor_id: int | None = None,
        shutdown_timeout: float | None = None,
    ) -> None:
        super().__init__(app, name=name, supervisor_id=supervisor_id)
        self.queues = QueueSelector(tuple(queues))
        self.threads = threads
        # Claimed jobs waiting for a thread: bigger claims, fewer transactions. Off by
        # default: a job waiting in a worker that crashes counts that crash too.
        self.prefetch = 0 if prefetch is None else prefetch
        self.polling_interval = polling_interval
        self.shutdown_timeout = (
            app.config.shutdown_timeout if shutdown_timeout is None else shutdown_timeout
        )
        # Set when the worker is asked to stop: jobs see it as current_job().shutting_down.
        self.shutting_down = threading.Event()
        self.completer = Completer(self.name, lambda: self.store, lambda: self.process_id)
        self.pool: ExecutionPool | None = None

    @property
    def jobs_done(self) -> int:
        """Finished attempts this worker has recorded."""
        return self.completer.written

    def metadata(self) -> dict[str, Any]:
        return {
            "queues": list(self.queues.patterns),
            "threads": self.threads,
            "prefetch": self.prefetch,
        }

    def stop(self) -> None:
        self.shutting_down.set()
        if self.pool is not None:
            self.pool.stop_starting()
        super().stop()

    # ---- the claim loop ----

    def run(self) -> None:
        self.register()
        self.pool = ExecutionPool(
            self.threads, self._execute, self._execute_async, self.name, self.prefetch
        )
        self.completer.start()
        listener = self.store.ready_listener(self._on_ready, self.stopping)
        if listener is not None:
            listener.start()
        log.info("%s started: queues=%s threads=%d", self.name, self.queues.patterns, self.threads)
        try:
            while not self.stopping.is_set():
                self._poll_once(self.pool)
        finally:
            self._shutdown(self.pool)

    def _poll_once(self, pool: ExecutionPool) -> None:
        idle = pool.idle()
        # With a prefetch buffer, claim in batches of at least half of it (one claim per
        # job would cost a round trip per job), unless no claimed job is left waiting.
        batch = max(1, self.prefetch // 2)
        if idle < batch and (idle <= 0 or pool.waiting() > 0):
            pool.wait_for_slots(batch, self.polling_interval)
            return
        try:
            jobs = self.store.ready_claim(self.process_id, self.queues, idle)
        except DatabaseUnavailable as exc:
            self.outage(exc)
            return
        except Exception as exc:  # never die of an unexpected error: log, wait, go on
            log.exception("%s: claim failed", self.name)
            self.outage(exc)
            return
        if self.backoff.failing:
            self._after_outage(pool, jobs)
        self.recovered()
        pool.submit([(job, self._is_async(job)) for job in jobs])
        if len(jobs) < idle:
            # The queues are empty (or paused): wait for more.
            self.sleep(self.polling_interval)

    def _after_outage(self, pool: ExecutionPool, fresh: list[ClaimedJob]) -> None:
        """Release claims we hold but know nothing of: a claim whose commit reached the
        database while its answer was lost to the outage would otherwise stay stuck."""
        known_before = pool.running() | self.completer.pending_ids()
        try:
            held = set(self.store.claimed_by(self.process_id))
        except DatabaseUnavailable:
            return
        known = known_before | pool.running() | self.completer.pending_ids()
        orphans = held - known - {job.id for job in fresh}
        if orphans:
            released = self.store.claimed_release(self.process_id, sorted(orphans))
            log.warning("%s: released %d claim(s) lost in the outage", self.name, released)

    def _on_ready(self, queue: str) -> None:
        if self.queues.matches(queue):
            self.wake.set()

    def _is_async(self, job: ClaimedJob) -> bool:
        task = self.app.tasks.get(job.task_name)
        return task is not None and task.is_async

    # ---- running one job ----

    def _job_info(self, job: ClaimedJob) -> JobInfo:
        return JobInfo(
            id=job.id,
            task_name=job.task_name,
            attempt=job.attempts + 1,
            queue_name=job.queue_name,
            enqueued_at=job.enqueued_at,
            _shutdown=self.shutting_down,
            worker=self.name,
        )

    def _execute(self, job: ClaimedJob) -> None:
        started = time.time()
        try:
            task = self.app.get_task(job.task_name)
            args, kwargs, info = loads(job.args), loads(job.kwargs), self._job_info(job)
            value = run_sync(task.func, args, kwargs, info, job.context, self.app.hooks)
            outcome = succeeded(job, value, started)
        except BaseException as exc:  # the job's error (or a return value not JSON)
            outcome = failed(self.app, job, exc, started)
        self.completer.push(outcome)

    async def _execute_async(self, job: ClaimedJob) -> None:
        started = time.time()
        try:
            task = self.app.get_task(job.task_name)
            args, kwargs, info = loads(job.args), loads(job.kwargs), self._job_info(job)
            value = await run_async_inline(
                task.func, args, kwargs, info, job.context, self.app.hooks
            )
            outcome = succeeded(job, value, started)
        except BaseException as exc:
            outcome = failed(self.app, job, exc, started)
        self.completer.push(outcome)

    # ---- stopping ----

    def _shutdown(self, pool: ExecutionPool) -> None:
        """Let running jobs finish up to the timeout; hand the rest back to ready."""
        waiting = pool.take_waiting()
        if waiting:
            ids = [job.id for job in waiting]
            self.retrying(lambda: self.store.claimed_release(self.process_id, ids))
        if not pool.wait_empty(self.shutdown_timeout):
            log.warning(
                "%s: %d job(s) still running after %.1f s; handing them back",
                self.name,
                len(pool.running()),
                self.shutdown_timeout,
            )
        self.completer.stop_and_flush()
        unfinished = pool.running()
        if unfinished:
            released = self.retrying(lambda: self.store.claimed_release(self.process_id))
            log.warning("%s: released %d job(s) back to ready", self.name, released)
        pool.shutdown()
        self.deregister()
        log.info("%s stopped after %d job(s)", self.name, self.jobs_done)
