"""What every Stalwart process shares: a row in `stalwart_processes` (registration,
heartbeats, deregistration) and riding out database outages with a backoff.

`Process` is those pieces alone: the supervisor uses them from its single thread.
`Actor` adds what a forked child's loop needs: a heartbeat thread, a stop event and an
interruptible sleep. The worker, dispatcher and scheduler are actors.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DatabaseUnavailable
from ..observe.outage import OutageLog

if TYPE_CHECKING:
    from ..app import App
    from ..store import StoreProtocol

T = TypeVar("T")
log = logging.getLogger("stalwart.processes")

# How often a running process measures its clock against the database's again (with a
# heartbeat): at the default heartbeat_interval, one heartbeat in six. Clocks drift by
# milliseconds a minute; a SELECT with every heartbeat would double an idle fleet's cost.
CLOCK_SYNC_S = 60.0


class Backoff:
    """Exponential wait between tries while the database is away: 0.1 s up to 5 s."""

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        self.first, self.cap, self.current = first, cap, first
        self.failing = False

    def failed(self) -> float:
        wait = self.current
        self.current = min(self.cap, self.current * 2)
        self.failing = True
        return wait

    def succeeded(self) -> bool:
        """Reset; True if this ends an outage (to log the recovery once)."""
        was = self.failing
        self.current, self.failing = self.first, False
        return was


class Process:
    """A registered process: its row, its heartbeat, its patience with the database."""

    kind = "process"

    def __init__(
        self, app: App, *, name: str | None = None, supervisor_id: int | None = None
    ) -> None:
        self.app = app
        self.name = name or f"{self.kind}-{uuid.uuid4().hex[:12]}"
        self.supervisor_id = supervisor_id
        self.process_id: int | None = None
        self.backoff = Backoff()
        # Every part of this process reports outages here: told once, summed up each minute.
        self.outages = OutageLog(self.name, log)

    @property
    def store(self) -> StoreProtocol:
        return self.app.store

    def metadata(self) -> dict[str, Any]:
        return {}

    def should_stop(self) -> bool:
        raise NotImplementedError

    def pause(self, seconds: float) -> None:
        """Wait ``seconds``, or less if asked to stop."""
        raise NotImplementedError

    # ---- the row ----

    def register(self) -> None:
        """Measure this host's clock against the database's, then insert our row,
        waiting out an outage (unless asked to stop meanwhile)."""
        self.retrying(lambda: self.store.clock.sync(self.name))
        self.process_id = self.retrying(
            lambda: self.store.process_register(
                kind=self.kind,
                name=self.name,
                pid=os.getpid(),
                hostname=socket.gethostname(),
                supervisor_id=self.supervisor_id,
                metadata=self.metadata(),
            )
        )

    def heartbeat(self) -> bool | None:
        """One heartbeat: True if recorded, False if our row is gone (another process
        pruned us as dead), None if the database could not be reached."""
        if self.process_id is None:
            return None
        try:
            if self.store.clock.due(CLOCK_SYNC_S):
                self.store.clock.sync(self.name)
            beat = self.store.process_heartbeat(self.process_id)
        except DatabaseUnavailable as exc:
            self.outages.failed(exc)
            return None
        self.outages.succeeded()
        return beat

    def deregister(self) -> None:
        if self.process_id is None:
            return
        try:
            self.store.process_deregister(self.process_id)
        except DatabaseUnavailable:
            log.warning("%s: could not deregister; it will be pruned as dead", self.name)

    # ---- riding out outages ----

    def retrying(self, call: Callable[[], T]) -> T:
        """Call until the database answers; raise its error if asked to stop first."""
        while True:
            try:
                value = call()
            except DatabaseUnavailable as exc:
                self.outage(exc)
                if self.should_stop() and self.process_id is None:
                    raise
                continue
            self.recovered()
            return value

    def outage(self, exc: Exception) -> None:
        wait = self.backoff.failed()
        self.outages.failed(exc, wait)
        self.pause(wait)

    def recovered(self) -> None:
        self.backoff.succeeded()
        self.outages.succeeded()


class Actor(Process):
    """A long-running loop in a process of its own (a worker, dispatcher, scheduler)."""

    kind = "actor"
    # What the actor's process exits with when run() returns (see fork.run_child).
    exit_code = 0

    def __init__(
        self, app: App, *, name: str | None = None, supervisor_id: int | None = None
    ) -> None:
        super().__init__(app, name=name, supervisor_id=supervisor_id)
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self._heartbeat: threading.Thread | None = None

    def run(self) -> None:
        """The actor's loop: returns once stopped."""
        raise NotImplementedError

    def stop(self) -> None:
        """Ask the actor to finish: it stops taking work and returns from run()."""
        self.stopping.set()
        self.wake.set()

    def hand_back_now(self) -> None:
        """Stop at once (a second Ctrl-C): what the actor holds goes back."""
        self.stop()

    def should_stop(self) -> bool:
        return self.stopping.is_set()

    def pause(self, seconds: float) -> None:
        self.stopping.wait(seconds)

    def sleep(self, seconds: float) -> None:
        """Sleep until the interval passes, a wake-up comes, or we are stopped."""
        self.wake.wait(seconds)
        self.wake.clear()

    def register(self) -> None:
        super().register()
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop, name=f"{self.name}-heartbeat", daemon=True
        )
        self._heartbeat.start()

    def _heartbeat_loop(self) -> None:
        interval = self.app.config.heartbeat_interval
        while not self.stopping.wait(interval):
            if self.heartbeat() is False:
                log.error("%s was pruned as dead by another process; stopping", self.name)
                self.on_pruned()
                return

    def on_pruned(self) -> None:
        self.stop()


def interruptible_sleep(seconds: float, stop: Callable[[], bool], step: float = 0.05) -> None:
    """Sleep in short steps, returning early once ``stop()`` is true (for the
    single-threaded supervisor, whose signal handlers only set a flag)."""
    deadline = time.monotonic() + seconds
    while not stop() and time.monotonic() < deadline:
        time.sleep(min(step, max(0.0, deadline - time.monotonic())))
