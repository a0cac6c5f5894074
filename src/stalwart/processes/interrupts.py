"""Stopping a running job from outside: at its timeout, or when it is cancelled.

A sync job gets the exception (`JobTimeout`, `Cancelled`) raised in its thread, the way
CPython raises KeyboardInterrupt: ``PyThreadState_SetAsyncExc``. An async job's task is
cancelled. Code stuck in C (a blocking ``time.sleep``, a socket read) sees neither; if
the job is still running ``timeout_grace`` seconds later, the worker gives it up: the
attempt is recorded as failed, and the worker process is recycled (it stops taking
jobs, lets the others finish, exits, and its supervisor starts a fresh one).

One watcher thread per worker keeps the deadlines and, while the worker holds jobs,
asks the store twice a second which of them were cancelled.
"""

from __future__ import annotations

import asyncio
import ctypes
import heapq
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import Cancelled, DatabaseUnavailable, JobTimeout
from ..store import ClaimedJob, StoreProtocol

log = logging.getLogger("stalwart.worker")

# How often the store is asked about cancels while the worker holds jobs.
CANCEL_POLL_S = 0.5
_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
# The exception class by address (CPython), or NULL (None) to take back a pending one.
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.c_void_p)


@dataclass(eq=False)
class Running:
    """A job being run, as the watcher sees it."""

    job: ClaimedJob
    started: float  # time.time() of its start
    deadline: float | None  # time.monotonic() of its timeout
    thread: int | None = None  # a sync job's thread ident
    task: asyncio.Future[Any] | None = None  # an async job's task
    loop: asyncio.AbstractEventLoop | None = None
    cancel_asked: bool = False  # what current_job().cancelled reads
    armed: bool = True  # while the job's own code runs
    reason: str | None = None  # "timeout" | "cancel", once it was interrupted
    interrupted_at: float = 0.0
    abandoned: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def is_set(self) -> bool:
        """For ``current_job().cancelled``."""
        return self.cancel_asked

    def error(self) -> BaseException:
        """What the attempt failed with, said in words."""
        if self.reason == "timeout":
            return JobTimeout(f"the attempt ran past its timeout of {self.job.timeout:g} s")
        return Cancelled("cancelled while it ran (by request)")


class Interrupts:
    """The worker's watcher: deadlines, cancels, and the grace before giving a job up."""

    def __init__(
        self,
        name: str,
        store: Callable[[], StoreProtocol],
        held: Callable[[], set[int]],
        give_up: Callable[[Running], None],
        grace: float,
    ) -> None:
        self.name = name
        self._store, self._held, self._give_up = store, held, give_up
        self.grace = grace
        self._lock = threading.Lock()
        self._running: dict[int, Running] = {}
        self._deadlines: list[tuple[float, int]] = []
        # Cancels seen for jobs held but not started yet: they never run.
        self._cancelled: set[int] = set()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"{name}-interrupts", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    # ---- the job's side ----

    def begin(
        self,
        job: ClaimedJob,
        started: float,
        *,
        thread: int | None = None,
        task: asyncio.Future[Any] | None = None,
        loop: asyncio.AbstractEventLoop | None = None,
    ) -> Running | None:
        """Register a job about to run (its thread, or its task and loop); None if it
        was cancelled before it started."""
        if job.id in self._cancelled:
            self._cancelled.discard(job.id)
            return None
        deadline = time.monotonic() + job.timeout if job.timeout else None
        running = Running(job, started, deadline, thread, task, loop)
        with self._lock:
            self._running[job.id] = running
            if deadline is not None:
                heapq.heappush(self._deadlines, (deadline, job.id))
        if deadline is not None:
            self._wake.set()
        return running

    def end(self, running: Running) -> bool:
        """The job's own code returned or raised: nothing may be raised in it any more.
        False if the job was given up meanwhile (its outcome is recorded already)."""
        with running.lock:
            running.armed = False
            if running.reason is not None and running.thread is not None:
                # Raised, or still pending: a pending one must not reach our own code.
                _set_async_exc(running.thread, None)
        with self._lock:
            self._running.pop(running.job.id, None)
        return not running.abandoned

    # ---- the watcher ----

    def _main(self) -> None:
        next_poll = 0.0
        while not self._stop.is_set():
            now = time.monotonic()
            self._fire_deadlines(now)
            self._give_up_stuck(now)
            if now >= next_poll:
                next_poll = now + CANCEL_POLL_S
                self._poll_cancels()
            with self._lock:
                soonest = self._deadlines[0][0] if self._deadlines else now + CANCEL_POLL_S
            self._wake.wait(max(0.01, min(soonest, next_poll) - time.monotonic()))
            self._wake.clear()

    def _fire_deadlines(self, now: float) -> None:
        due: list[Running] = []
        with self._lock:
            while self._deadlines and self._deadlines[0][0] <= now:
                _, job_id = heapq.heappop(self._deadlines)
                running = self._running.get(job_id)
                if running is not None:
                    due.append(running)
        for running in due:
            self.interrupt(running, "timeout")

    def _poll_cancels(self) -> None:
        held = self._held()
        if not held:
            return
        try:
            asked = self._store().cancellations_among(sorted(held))
        except DatabaseUnavailable:
            return  # the next look will see them
        for job_id in asked:
            with self._lock:
                running = self._running.get(job_id)
            if running is None:
                self._cancelled.add(job_id)  # held, not started: it will not start
            else:
                running.cancel_asked = True
                self.interrupt(running, "cancel")

    def interrupt(self, running: Running, reason: str) -> None:
        """Raise in the job (once): JobTimeout at the deadline, Cancelled on a cancel."""
        with running.lock:
            if not running.armed or running.reason is not None:
                return
            running.reason, running.interrupted_at = reason, time.monotonic()
            if running.task is not None and running.loop is not None:
                running.loop.call_soon_threadsafe(running.task.cancel)
            elif running.thread is not None:
                exc = JobTimeout if reason == "timeout" else Cancelled
                _set_async_exc(running.thread, id(exc))
        log.warning(
            "%s: job %s (%s): %s; interrupting it",
            self.name,
            running.job.id,
            running.job.task_name,
            "timed out" if reason == "timeout" else "cancelled",
        )
        self._wake.set()

    def _give_up_stuck(self, now: float) -> None:
        with self._lock:
            stuck = [
                r
                for r in self._running.values()
                if r.reason is not None and now - r.interrupted_at >= self.grace
            ]
        for running in stuck:
            with running.lock:
                if not running.armed or running.abandoned:
                    continue
                running.abandoned = True
            with self._lock:
                self._running.pop(running.job.id, None)
            self._give_up(running)
