"""The worker's execution pool: N daemon threads, plus an event loop for async tasks.

Capacity is counted in jobs, whichever kind: with ``threads = 5`` at most five jobs
run at once, sync or async. Threads are daemons so that a job that ignores shutdown
cannot keep the process alive past the shutdown timeout.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Coroutine
from typing import Any

from ..store import ClaimedJob
from .board import RunningBoard

log = logging.getLogger("stalwart.worker")

SyncRunner = Callable[[ClaimedJob], None]
AsyncRunner = Callable[[ClaimedJob], Coroutine[Any, Any, None]]


class ExecutionPool:
    """Runs up to ``threads`` jobs at once, with room for ``prefetch`` more waiting."""

    def __init__(
        self,
        threads: int,
        run_sync: SyncRunner,
        run_async: AsyncRunner,
        name: str,
        prefetch: int = 0,
        board: RunningBoard | None = None,
    ) -> None:
        self.threads = threads
        self.size = threads + prefetch
        # Jobs started and not ended, also written where the supervisor can read them.
        self._board = board
        self._started: set[int] = set()
        # Given up while still running (stuck past a timeout): their end is not counted.
        self._abandoned: set[int] = set()
        self._run_sync = run_sync
        self._run_async = run_async
        self._name = name
        self._inbox: queue.SimpleQueue[ClaimedJob | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._running: set[int] = set()  # claimed by this pool: executing or waiting
        self._active = 0  # executing now
        self._wanted = 0  # free slots the claimer waits for (0: nobody waits)
        self._watchers = 0  # threads waiting on _freed (the claimer, a shutdown)
        self._freed = threading.Condition(self._lock)
        self._threads = [
            threading.Thread(target=self._thread_main, name=f"{name}-{i}", daemon=True)
            for i in range(threads)
        ]
        for t in self._threads:
            t.start()
        # Once set, jobs taken from the inbox are set aside, not started.
        self._closing = threading.Event()
        self._set_aside: list[ClaimedJob] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: threading.Thread | None = None

    # ---- capacity ----

    def set_prefetch(self, prefetch: int) -> None:
        """Resize the waiting room (an auto prefetch follows the jobs' durations)."""
        size = self.threads + prefetch
        if size != self.size:
            with self._lock:
                self.size = size

    def idle(self) -> int:
        with self._lock:
            return self.size - len(self._running)

    def waiting(self) -> int:
        """Claimed jobs not started yet."""
        with self._lock:
            return len(self._running) - self._active

    def running(self) -> set[int]:
        """Claimed by this pool: executing or waiting for a thread."""
        with self._lock:
            return set(self._running)

    def started(self) -> set[int]:
        """Executing now (started, not ended)."""
        with self._lock:
            return set(self._started)

    def wait_for_slots(self, wanted: int, timeout: float) -> None:
        """Wait until ``wanted`` slots are free, or no claimed job is left waiting for
        a thread (then the next claim must not wait any longer)."""
        with self._freed:
            self._wanted = wanted
            self._watchers += 1
            try:
                self._freed.wait_for(self._claim_due, timeout)
            finally:
                self._watchers -= 1
                self._wanted = 0

    def _claim_due(self) -> bool:
        # Called with the lock held.
        if self._closing.is_set():
            return True
        return self.size - len(self._running) >= self._wanted or len(self._running) <= self._active

    def wait_empty(self, timeout: float) -> bool:
        """Wait until no job is running; False if some still are at the timeout."""
        with self._freed:
            self._watchers += 1
            try:
                return self._freed.wait_for(lambda: not self._running, timeout)
            finally:
                self._watchers -= 1

    # ---- running ----

    def submit(self, jobs: list[tuple[ClaimedJob, bool]]) -> None:
        """Start (or queue) claimed jobs; each pair is (job, is it async)."""
        with self._lock:
            self._running.update(job.id for job, _ in jobs)
        for job, is_async in jobs:
            if is_async:
                self._event_loop().call_soon_threadsafe(self._start_async, job)
            else:
                self._inbox.put(job)

    def _begin(self, job_id: int) -> None:
        # Called with the lock held, as a job starts.
        self._active += 1
        self._started.add(job_id)
        if self._board is not None:
            self._board.mark(job_id)

    def _done(self, job_id: int, was_active: bool = False) -> None:
        with self._freed:
            if job_id in self._abandoned:  # ended long after it was given up
                self._abandoned.discard(job_id)
                return
            self._end(job_id, was_active)

    def _end(self, job_id: int, was_active: bool) -> None:
        # Called with the lock held.
        if was_active:
            self._active -= 1
            self._started.discard(job_id)
            if self._board is not None:
                self._board.clear(job_id)
        self._running.discard(job_id)
        # Wake a waiter only when there is one, and the claimer only when it would
        # claim: not once per finished job.
        if self._watchers and (self._wanted == 0 or self._claim_due()):
            self._freed.notify_all()

    def _thread_main(self) -> None:
        while True:
            job = self._inbox.get()
            if job is None:
                return
            if self._closing.is_set():
                with self._lock:
                    self._set_aside.append(job)
                continue
            with self._lock:
                self._begin(job.id)
            try:
                self._run_sync(job)
            except BaseException:  # the runner records errors; this is a last resort
                log.exception("job %s escaped its runner", job.id)
            finally:
                self._done(job.id, was_active=True)

    def _event_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                self._loop_thread = threading.Thread(
                    target=self._loop.run_forever, name=f"{self._name}-async", daemon=True
                )
                self._loop_thread.start()
            return self._loop

    def _start_async(self, job: ClaimedJob) -> None:
        if self._closing.is_set():
            with self._lock:
                self._set_aside.append(job)
            return
        with self._lock:
            self._begin(job.id)
        task = asyncio.get_running_loop().create_task(self._run_async(job))
        task.add_done_callback(lambda _t: self._finish_async(job.id))

    def _finish_async(self, job_id: int) -> None:
        self._done(job_id, was_active=True)

    def abandon(self, job_id: int) -> None:
        """Count a job stuck past its timeout as ended (its thread or the event loop is
        still in it): the worker is recycling, and must not wait for it."""
        with self._freed:
            if job_id in self._started:
                self._end(job_id, was_active=True)
                self._abandoned.add(job_id)

    def stop_starting(self) -> None:
        """Start no more jobs; those waiting stay claimed until `take_waiting`."""
        self._closing.set()
        # Wake a claimer waiting for slots: it has none to wait for now. From another
        # thread, since this may run in a signal handler that interrupted a holder of
        # the (non-reentrant) lock.
        threading.Thread(target=self._wake_all, daemon=True).start()

    def _wake_all(self) -> None:
        with self._freed:
            self._freed.notify_all()

    def take_waiting(self) -> list[ClaimedJob]:
        """Remove the jobs not started yet (to hand them back at shutdown)."""
        self._closing.set()
        with self._lock:
            taken, self._set_aside = self._set_aside, []
        while True:
            try:
                job = self._inbox.get_nowait()
            except queue.Empty:
                break
            if job is not None:
                taken.append(job)
        for job in taken:
            self._done(job.id)
        return taken

    def shutdown(self) -> None:
        for _ in self._threads:
            self._inbox.put(None)
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
