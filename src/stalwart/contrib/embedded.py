"""A worker (and dispatcher, and optionally a scheduler) inside another process: a web
server's, for small deployments that run no `stalwart start` beside it.

    workers = EmbeddedWorkers(app, queues=["default"], threads=2)
    workers.start()          # actors in daemon threads of this process
    ...
    workers.stop()           # graceful: running jobs get app.config.shutdown_timeout

The actors are the ones `stalwart start` forks (registered, heartbeating); what this
gives up is the supervisor: if the process dies, its claimed jobs are recovered by a
supervisor running elsewhere on the same database (it prunes the stale process), or
stay claimed until one runs.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..processes.base import Actor
from ..processes.dispatcher import Dispatcher
from ..processes.scheduler import Scheduler
from ..processes.worker import Worker

if TYPE_CHECKING:
    from ..app import App


class EmbeddedWorkers:
    def __init__(
        self,
        app: App,
        *,
        queues: Sequence[str] = ("*",),
        threads: int = 2,
        prefetch: int | str | None = None,
        polling_interval: float = 0.1,
        dispatcher: bool = True,
        scheduler: bool = False,
    ) -> None:
        self.app = app
        self.actors: list[Actor] = [
            Worker(
                app,
                queues=queues,
                threads=threads,
                prefetch=prefetch,
                polling_interval=polling_interval,
            )
        ]
        if dispatcher:
            self.actors.append(Dispatcher(app))
        if scheduler:
            self.actors.append(Scheduler(app))
        self._threads: list[threading.Thread] = []

    @property
    def worker(self) -> Worker:
        worker = self.actors[0]
        assert isinstance(worker, Worker)
        return worker

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("these embedded workers are already started")
        self._threads = [
            threading.Thread(target=a.run, name=f"stalwart-{a.name}", daemon=True)
            for a in self.actors
        ]
        for t in self._threads:
            t.start()

    def stop(self, timeout: float | None = None) -> bool:
        """Stop gracefully: no new claims, running jobs finish up to the app's
        shutdown_timeout, the rest go back to ready. False if a thread outlived
        ``timeout`` (default: shutdown_timeout + 5 s)."""
        for a in self.actors:
            a.stop()
        limit = self.app.config.shutdown_timeout + 5.0 if timeout is None else timeout
        for t in self._threads:
            t.join(limit)
        alive = any(t.is_alive() for t in self._threads)
        self._threads = []
        return not alive
