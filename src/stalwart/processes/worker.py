"""The worker: claims ready jobs up to its idle capacity and runs them.

Four parts run side by side: the claim loop (this actor's run()), the execution pool
(`pool.py`), the completer (`completer.py`), which writes finished attempts in batches
every few milliseconds instead of one commit per job, and the watcher of timeouts and
cancels (`interrupts.py`). `attempt.py` runs one attempt, `outcomes.py` turns what it
returned or raised into what is recorded.

An isolation worker (``isolation=True``: one thread, no prefetch) runs suspects — jobs
that were running beside others when a worker died — one at a time, so that a crash of
its process can be charged to the one job it ran; it stops when none is left.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseUnavailable
from ..store import ClaimedJob, Listener, Outcome, QueueSelector
from .attempt import Attempts
from .base import Actor
from .board import RunningBoard
from .completer import Completer
from .interrupts import Interrupts, Running
from .pool import ExecutionPool
from .prefetch import Prefetch, PrefetchSize

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.worker")

# An idle worker's wait between polls doubles from polling_interval up to this many
# times it (and, on PostgreSQL while its LISTEN connection is up, to
# NOTIFY_POLLING_INTERVAL: notifications wake it, the poll is only a safety net).
IDLE_BACKOFF_CAP = 20.0
NOTIFY_POLLING_INTERVAL = 30.0

# The exit code of a worker that recycles itself (a job stuck past its timeout): its
# supervisor starts a fresh one at once (EX_TEMPFAIL).
RECYCLE_EXIT_CODE = 75


class Worker(Actor):
    kind = "worker"

    def __init__(
        self,
        app: App,
        *,
        queues: Sequence[str] = ("*",),
        threads: int = 5,
        prefetch: Prefetch | None = None,
        polling_interval: float = 0.1,
        idle_backoff_cap: float = IDLE_BACKOFF_CAP,
        notify_polling_interval: float = NOTIFY_POLLING_INTERVAL,
        name: str | None = None,
        supervisor_id: int | None = None,
        shutdown_timeout: float | None = None,
        board: RunningBoard | None = None,
        isolation: bool = False,
    ) -> None:
        super().__init__(app, name=name, supervisor_id=supervisor_id)
        self.queues = QueueSelector(tuple(queues))
        self.isolation = isolation
        self.threads = 1 if isolation else threads
        # Claimed jobs waiting for a thread: bigger claims, fewer transactions. A job
        # waiting here when the worker dies is handed back, charged nothing.
        self.prefetch_size = PrefetchSize(
            0 if prefetch is None or isolation else prefetch, self.threads
        )
        self.board = board
        self.polling_interval = polling_interval
        self.idle = IdlePolls(polling_interval, idle_backoff_cap, notify_polling_interval)
        self.listener: Listener | None = None
        self.shutdown_timeout = (
            app.config.shutdown_timeout if shutdown_timeout is None else shutdown_timeout
        )
        # Set when the worker is asked to stop: jobs see it as current_job().shutting_down.
        self.shutting_down = threading.Event()
        self.completer = Completer(
            self.name,
            lambda: self.store,
            lambda: self.process_id,
            outages=self.outages,
            on_written=lambda outcomes, ids: self.attempts.observer.written(outcomes, ids),
        )
        self.pool: ExecutionPool | None = None
        self.interrupts = Interrupts(
            self.name,
            lambda: self.store,
            lambda: self.pool.running() if self.pool else set(),
            self._give_up,
            app.config.timeout_grace,
        )
        self.attempts = Attempts(
            app,
            lambda: self.store,
            self.interrupts,
            self._finished,
            self.shutting_down,
            self.name,
        )
        # Set by a second Ctrl-C: hand every job back now, running ones too.
        self.hand_back = threading.Event()

    @property
    def prefetch(self) -> int:
        """How many claimed jobs may wait for a thread now."""
        return self.prefetch_size.current

    def _finished(self, outcome: Outcome) -> None:
        self.prefetch_size.observe(max(0.0, outcome.finished_at - outcome.started_at))
        if self.pool is not None:
            self.pool.set_prefetch(self.prefetch_size.current)
        self.completer.push(outcome)

    @property
    def jobs_done(self) -> int:
        """Finished attempts this worker has recorded."""
        return self.completer.written

    def metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "queues": list(self.queues.patterns),
            "threads": self.threads,
            "prefetch": self.prefetch_size.most,
        }
        if self.prefetch_size.auto:
            meta["prefetch_mode"] = "auto"
        if self.isolation:
            meta["isolation"] = True
        return meta

    def stop(self) -> None:
        self.shutting_down.set()
        if self.pool is not None:
            self.pool.stop_starting()
        super().stop()

    def hand_back_now(self) -> None:
        """Stop at once: every job this worker holds goes back, running ones too."""
        self.hand_back.set()
        self.stop()

    def recycle(self, why: str) -> None:
        """Stop taking jobs, let the others finish, exit for a fresh process."""
        if not self.stopping.is_set():
            log.error("%s: %s; recycling this worker process", self.name, why)
        self.exit_code = RECYCLE_EXIT_CODE
        self.stop()

    def _give_up(self, running: Running) -> None:
        # The watcher's call: a job did not stop after it was interrupted.
        self.completer.push(self.attempts.given_up(running))
        if self.pool is not None:
            self.pool.abandon(running.job.id)
        what = "timed out" if running.reason == "timeout" else "was cancelled"
        self.recycle(
            f"job {running.job.id} ({running.job.task_name}) {what} and did not stop "
            f"within timeout_grace ({self.interrupts.grace:g} s): it is stuck outside Python"
        )

    # ---- the claim loop ----

    def run(self) -> None:
        self.register()
        self.pool = ExecutionPool(
            self.threads,
            self.attempts.run_sync,
            self.attempts.run_async,
            self.name,
            self.prefetch,
            self.board,
        )
        self.completer.start()
        self.interrupts.start()
        self.listener = self.store.ready_listener(self._on_ready, self.stopping)
        if self.listener is not None:
            self.listener.start()
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
            jobs = self._claim(idle)
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
        if jobs:
            self.idle.reset()
        if len(jobs) < idle:
            # The queues are empty (or paused): wait for more, longer while they stay so.
            listening = self.listener is not None and self.listener.connected
            self.sleep(self.idle.polled(found=bool(jobs), listening=listening))

    def _claim(self, limit: int) -> list[ClaimedJob]:
        if not self.isolation:
            return self.store.ready_claim(self.process_id, self.queues, limit)
        suspect = self.store.suspect_claim(self.process_id, self.queues)
        if suspect is None and self.pool is not None and not self.pool.running():
            self.stop()  # none left to run alone
        return [] if suspect is None else [suspect]

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
        # "": the listener (re)connected or lost its connection: look now, whatever queue.
        if not queue or self.queues.matches(queue):
            self.idle.reset()
            self.wake.set()

    def _is_async(self, job: ClaimedJob) -> bool:
        task = self.app.tasks.get(job.task_name)
        return task is not None and task.is_async

    # ---- stopping ----

    def _shutdown(self, pool: ExecutionPool) -> None:
        """Let running jobs finish up to the timeout; hand the rest back to ready."""
        waiting = pool.take_waiting()
        if waiting:
            ids = [job.id for job in waiting]
            self.retrying(lambda: self.store.claimed_release(self.process_id, ids))
        why = f"{self.name} stopped before it finished"
        if not self._wait_running(pool):
            why = (
                "a second Ctrl-C handed it back at once"
                if self.hand_back.is_set()
                else f"{self.name} stopped and it ran past shutdown_timeout "
                f"({self.shutdown_timeout:g} s)"
            )
            log.warning(
                "%s: %d job(s) still running; handing them back (%s)",
                self.name,
                len(pool.started()),
                why,
            )
        self.completer.stop_and_flush()
        unfinished = pool.started()
        if pool.running():
            released = self.retrying(
                lambda: self.store.claimed_release(
                    self.process_id, interrupted=sorted(unfinished), why=why
                )
            )
            log.warning("%s: released %d job(s) back to ready", self.name, released)
        self.interrupts.stop()
        pool.shutdown()
        self.deregister()
        log.info("%s stopped after %d job(s)", self.name, self.jobs_done)

    def _wait_running(self, pool: ExecutionPool) -> bool:
        """Wait for running jobs to end, up to shutdown_timeout or a second Ctrl-C."""
        deadline = time.monotonic() + self.shutdown_timeout
        while time.monotonic() < deadline and not self.hand_back.is_set():
            if pool.wait_empty(min(0.1, max(0.0, deadline - time.monotonic()))):
                return True
        return pool.wait_empty(0)


class IdlePolls:
    """How long an idle worker waits before its next poll: ``polling_interval`` after a
    poll that found work, doubling with each empty poll up to ``polling_interval`` x
    ``cap`` — or, while a LISTEN connection is up to wake it, up to ``notify_interval``.
    A notification (`reset`) starts it over at once. Counters for tests and metrics."""

    def __init__(self, interval: float, cap: float, notify_interval: float) -> None:
        self.interval, self.cap, self.notify_interval = interval, cap, notify_interval
        self.empty = 0  # empty polls in a row
        self.last_wait = interval
        self.resets = 0
        self.waits: deque[float] = deque(maxlen=64)  # the latest waits, for tests

    def polled(self, *, found: bool, listening: bool) -> float:
        """The wait after a poll that claimed fewer jobs than it could take."""
        self.empty = 0 if found else self.empty + 1
        longest = self.interval * self.cap
        if listening:
            longest = max(longest, self.notify_interval)
        self.last_wait = min(longest, self.interval * 2 ** min(max(0, self.empty - 1), 64))
        self.waits.append(self.last_wait)
        return self.last_wait

    def reset(self) -> None:
        """Work was found, or a notification came: the next wait is the shortest."""
        self.empty = 0
        self.resets += 1
