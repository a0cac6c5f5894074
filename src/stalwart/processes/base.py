"""What every actor shares: registration, heartbeats, stopping, riding out outages."""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import DatabaseUnavailable

if TYPE_CHECKING:
    from ..app import App

T = TypeVar("T")
log = logging.getLogger("stalwart.processes")


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


class Actor:
    """A long-running loop that registers itself in `stalwart_processes`."""

    kind = "actor"

    def __init__(
        self,
        app: App,
        *,
        name: str | None = None,
        supervisor_id: int | None = None,
    ) -> None:
        self.app = app
        self.store = app.store
        self.name = name or f"{self.kind}-{uuid.uuid4().hex[:12]}"
        self.supervisor_id = supervisor_id
        self.process_id: int | None = None
        self.stopping = threading.Event()
        self.wake = threading.Event()
        self.backoff = Backoff()
        self._heartbeat: threading.Thread | None = None

    # ---- lifecycle ----

    def metadata(self) -> dict[str, Any]:
        return {}

    def run(self) -> None:
        """The actor's loop: returns once stopped."""
        raise NotImplementedError

    def stop(self) -> None:
        """Ask the actor to finish: it stops taking work and returns from run()."""
        self.stopping.set()
        self.wake.set()

    def register(self) -> None:
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
        self._heartbeat = threading.Thread(
            target=self._heartbeat_loop, name=f"{self.name}-heartbeat", daemon=True
        )
        self._heartbeat.start()

    def deregister(self) -> None:
        if self.process_id is not None:
            try:
                self.store.process_deregister(self.process_id)
            except DatabaseUnavailable:
                log.warning("%s: could not deregister; the supervisor will prune it", self.name)

    def _heartbeat_loop(self) -> None:
        interval = self.app.config.heartbeat_interval
        while not self.stopping.wait(interval):
            try:
                assert self.process_id is not None
                if not self.store.process_heartbeat(self.process_id):
                    log.error("%s was pruned as dead by another process; stopping", self.name)
                    self.on_pruned()
                    return
            except DatabaseUnavailable as exc:
                log.warning("%s: heartbeat failed: %s", self.name, exc)

    def on_pruned(self) -> None:
        self.stop()

    # ---- riding out outages ----

    def retrying(self, call: Callable[[], T]) -> T:
        """Call until the database answers (or the actor is told to stop)."""
        while True:
            try:
                value = call()
            except DatabaseUnavailable as exc:
                self.outage(exc)
                if self.stopping.is_set() and self.process_id is None:
                    raise
                continue
            self.recovered()
            return value

    def outage(self, exc: Exception) -> None:
        wait = self.backoff.failed()
        log.warning("%s: %s; trying again in %.1f s", self.name, exc, wait)
        self.stopping.wait(wait)

    def recovered(self) -> None:
        if self.backoff.succeeded():
            log.warning("%s: database is back", self.name)

    def sleep(self, seconds: float) -> None:
        """Sleep until the interval passes, a wake-up comes, or we are stopped."""
        self.wake.wait(seconds)
        self.wake.clear()
