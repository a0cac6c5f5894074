"""The worker: claims ready jobs up to its idle capacity and runs them.

Three parts run side by side: the claim loop (this actor's run()), the execution pool,
and the completer, which writes finished attempts in batches every few milliseconds
instead of one commit per job.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import traceback
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from ..context import JobInfo, run_async_inline, run_sync
from ..errors import DatabaseUnavailable, SerializationError, Snooze, UnknownTaskError
from ..serialization import check_json, dumps, loads
from ..store import ClaimedJob, Outcome, QueueSelector, utcnow
from .base import Actor, Backoff
from .pool import ExecutionPool

if TYPE_CHECKING:
    from ..app import App
    from ..tasks import Task

log = logging.getLogger("stalwart.worker")

# The most finished jobs the completer writes in one transaction.
COMPLETION_BATCH = 500


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
        self.completer = Completer(self)
        self.pool: ExecutionPool | None = None
        self.jobs_done = 0

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
        )

    def _execute(self, job: ClaimedJob) -> None:
        started = time.time()
        try:
            task = self.app.get_task(job.task_name)
            value = run_sync(
                task.func,
                loads(job.args),
                loads(job.kwargs),
                self._job_info(job),
                job.context,
                self.app.hooks,
            )
            outcome = self._success(job, task, value, started)
        except BaseException as exc:
            outcome = self._failure(job, exc, started)
        self.completer.push(outcome)

    async def _execute_async(self, job: ClaimedJob) -> None:
        started = time.time()
        try:
            task = self.app.get_task(job.task_name)
            value = await run_async_inline(
                task.func,
                loads(job.args),
                loads(job.kwargs),
                self._job_info(job),
                job.context,
                self.app.hooks,
            )
            outcome = self._success(job, task, value, started)
        except BaseException as exc:
            outcome = self._failure(job, exc, started)
        self.completer.push(outcome)

    def _success(
        self, job: ClaimedJob, task: Task[Any, Any], value: Any, started: float
    ) -> Outcome:
        if value is not None:
            check_json(value, f"return value of task {task.name}")
        return Outcome(
            job_id=job.id,
            started_at=started,
            finished_at=time.time(),
            kind="success",
            result=dumps(value) if value is not None else None,
            concurrency_limits=job.concurrency_limits,
        )

    def _failure(self, job: ClaimedJob, exc: BaseException, started: float) -> Outcome:
        finished = time.time()
        now = utcnow()
        if isinstance(exc, Snooze):
            return Outcome(
                job_id=job.id,
                started_at=started,
                finished_at=finished,
                kind="snooze",
                retry_at=now + timedelta(seconds=exc.seconds),
                counts_attempt=False,
                concurrency_limits=job.concurrency_limits,
            )
        error = describe_error(exc, now.isoformat())
        attempt = job.attempts + 1
        task = self.app.tasks.get(job.task_name)
        if task is not None and isinstance(exc, task.options.discard_on):
            # discard_on: the job ends here, finished, with the exception on record.
            log.info("job %s (%s) discarded: %s", job.id, job.task_name, error["message"])
            return Outcome(
                job_id=job.id,
                started_at=started,
                finished_at=finished,
                kind="discard",
                error={**error, "discarded": True},
                concurrency_limits=job.concurrency_limits,
            )
        retry_at = None
        retryable = task is not None and not isinstance(exc, (UnknownTaskError, SerializationError))
        if task is not None and retryable and task.options.retry.should_retry(attempt, exc):
            retry_at = now + timedelta(seconds=task.options.retry.delay(attempt))
        if retry_at is None:
            log.warning("job %s (%s) failed: %s", job.id, job.task_name, error["message"])
        return Outcome(
            job_id=job.id,
            started_at=started,
            finished_at=finished,
            kind="failure",
            error=error,
            retry_at=retry_at,
            concurrency_limits=job.concurrency_limits,
        )

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


def describe_error(exc: BaseException, at: str) -> dict[str, Any]:
    cls = type(exc)
    return {
        "class": f"{cls.__module__}.{cls.__qualname__}"
        if cls.__module__ != "builtins"
        else cls.__qualname__,
        "message": str(exc),
        "traceback": "".join(traceback.format_exception(exc)),
        "at": at,
    }


class Completer:
    """Writes finished attempts in batches; never drops one while the database is away."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.inbox: queue.SimpleQueue[Outcome] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._main, name=f"{worker.name}-completer", daemon=True
        )
        self._pending: list[Outcome] = []
        self._backoff = Backoff()
        self._lock = threading.Lock()
        self._unwritten: set[int] = set()

    def start(self) -> None:
        self._thread.start()

    def push(self, outcome: Outcome) -> None:
        with self._lock:
            self._unwritten.add(outcome.job_id)
        self.inbox.put(outcome)

    def pending_ids(self) -> set[int]:
        """Jobs finished here whose results are not written yet."""
        with self._lock:
            return set(self._unwritten)

    def _main(self) -> None:
        while not self._stop.is_set() or self._pending or not self.inbox.empty():
            if not self._pending:
                try:
                    self._pending.append(self.inbox.get(timeout=0.05))
                except queue.Empty:
                    continue
            # Group commit: write at once what has finished; what finishes meanwhile
            # forms the next batch. No waiting to gather: a result not yet written is a
            # job run again if this process dies.
            while len(self._pending) < COMPLETION_BATCH:
                try:
                    self._pending.append(self.inbox.get_nowait())
                except queue.Empty:
                    break
            self._flush()

    def _flush(self) -> None:
        try:
            self.worker.store.claimed_complete(self.worker.process_id, self._pending)
        except Exception as exc:  # the database is away (or worse): keep them, retry
            wait = self._backoff.failed()
            log.warning(
                "%s: could not record %d finished job(s): %s; trying again in %.1f s",
                self.worker.name,
                len(self._pending),
                exc,
                wait,
            )
            time.sleep(wait)
            return
        if self._backoff.succeeded():
            log.warning("%s: database is back; finished jobs recorded", self.worker.name)
        self.worker.jobs_done += len(self._pending)
        with self._lock:
            self._unwritten.difference_update(o.job_id for o in self._pending)
        self._pending = []

    def stop_and_flush(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
