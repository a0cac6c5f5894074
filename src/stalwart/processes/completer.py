"""The completer: writes a worker's finished attempts in batches (group commit), and
never drops one while the database is away."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence

from ..observe.outage import OutageLog
from ..store import Outcome, StoreProtocol
from .base import Backoff

log = logging.getLogger("stalwart.worker")

# The most finished jobs the completer writes in one transaction.
COMPLETION_BATCH = 500


class Completer:
    """``store()`` and ``process_id()`` are read at each write: a forked worker's store
    is made after the completer, and the process id once it registers."""

    def __init__(
        self,
        name: str,
        store: Callable[[], StoreProtocol],
        process_id: Callable[[], int | None],
        *,
        outages: OutageLog | None = None,
        on_written: Callable[[Sequence[Outcome], Sequence[int]], None] | None = None,
    ) -> None:
        self.name = name
        self._store, self._process_id = store, process_id
        self._outages = outages or OutageLog(name, log)
        # Told what each batch held and which of it was written (metrics count those).
        self._on_written = on_written
        # Finished attempts written so far.
        self.written = 0
        # None is a wake-up: stop_and_flush sends one so the thread need not time out.
        self.inbox: queue.SimpleQueue[Outcome | None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"{name}-completer", daemon=True)
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
                    first = self.inbox.get(timeout=0.05)
                except queue.Empty:
                    continue
                if first is None:
                    continue
                self._pending.append(first)
            # Group commit: write at once what has finished; what finishes meanwhile
            # forms the next batch. No waiting to gather: a result not yet written is a
            # job run again if this process dies.
            while len(self._pending) < COMPLETION_BATCH:
                try:
                    outcome = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if outcome is not None:
                    self._pending.append(outcome)
            self._flush()

    def _flush(self) -> None:
        try:
            written = self._store().claimed_complete(self._process_id(), self._pending)
        except Exception as exc:  # the database is away (or worse): keep them, retry
            wait = self._backoff.failed()
            self._outages.failed(
                RuntimeError(f"could not record {len(self._pending)} finished job(s): {exc}"),
                wait,
            )
            time.sleep(wait)
            return
        self._backoff.succeeded()
        self._outages.succeeded()
        if self._on_written is not None:
            self._on_written(self._pending, written)
        self.written += len(self._pending)
        with self._lock:
            self._unwritten.difference_update(o.job_id for o in self._pending)
        self._pending = []

    def stop_and_flush(self, timeout: float = 60.0) -> None:
        self._stop.set()
        self.inbox.put(None)
        self._thread.join(timeout)
