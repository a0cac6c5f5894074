"""What a supervisor runs: one slot per configured child (workers, dispatchers, the
scheduler), each slot a recipe for an actor and, while one runs, its process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from ..config import DispatcherConfig, WorkerConfig
from .base import Actor
from .board import RunningBoard
from .dispatcher import Dispatcher
from .scheduler import Scheduler
from .worker import Worker

if TYPE_CHECKING:
    from ..app import App
    from ..observe.health import Pulse
    from ..observe.probe import ProbeConfig, ProbeHTTPServer


@dataclass
class Slot:
    """One child: what to run, and its current process if any."""

    kind: str
    make: Callable[[str, int | None], Actor]
    # A worker's running jobs, shared with its process (crash blame).
    board: RunningBoard | None = None
    pid: int | None = None
    name: str = ""
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0
    exits: list[int] = field(default_factory=list)


def configured_slots(app: App) -> list[Slot]:
    """The children the config asks for: workers (times processes), dispatchers, a scheduler."""
    config = app.config
    slots = []
    for wc in config.workers:
        for _ in range(wc.processes):
            board = RunningBoard(wc.threads)
            slots.append(Slot("worker", partial(_make_worker, app, wc, board), board))
    slots += [Slot("dispatcher", partial(_make_dispatcher, app, dc)) for dc in config.dispatchers]
    if config.scheduler:  # one per supervisor, unless `scheduler = false`
        slots.append(Slot("scheduler", partial(_make_scheduler, app)))
    return slots


def isolation_slot(app: App, queues: tuple[str, ...]) -> Slot:
    """A one-off child that runs suspects of ``queues``, one at a time, alone."""
    board = RunningBoard(1)
    return Slot("isolation", partial(_make_isolation, app, queues, board), board)


def probe_slot(app: App, servers: list[ProbeHTTPServer], pulse: Pulse, config: ProbeConfig) -> Slot:
    """The child serving /metrics, /livez and /readyz on sockets bound already."""
    return Slot("probe", partial(_make_probe, app, servers, pulse, config))


def _make_probe(
    app: App,
    servers: list[ProbeHTTPServer],
    pulse: Pulse,
    config: ProbeConfig,
    name: str,
    supervisor_id: int | None,
) -> Actor:
    from ..observe.probe import ProbeServer

    return ProbeServer(app, servers, pulse, config, name=name, supervisor_id=supervisor_id)


def worker_queues(app: App) -> tuple[str, ...]:
    """Every queue pattern this supervisor's workers listen to."""
    return tuple(dict.fromkeys(q for wc in app.config.workers for q in wc.queues))


def _make_worker(
    app: App, wc: WorkerConfig, board: RunningBoard, name: str, supervisor_id: int | None
) -> Actor:
    return Worker(
        app,
        queues=wc.queues,
        threads=wc.threads,
        prefetch=wc.prefetch,
        polling_interval=wc.polling_interval,
        idle_backoff_cap=wc.idle_backoff_cap,
        notify_polling_interval=wc.notify_polling_interval,
        name=name,
        supervisor_id=supervisor_id,
        board=board,
    )


def _make_isolation(
    app: App, queues: tuple[str, ...], board: RunningBoard, name: str, supervisor_id: int | None
) -> Actor:
    return Worker(
        app, queues=queues, isolation=True, name=name, supervisor_id=supervisor_id, board=board
    )


def _make_dispatcher(app: App, dc: DispatcherConfig, name: str, supervisor_id: int | None) -> Actor:
    return Dispatcher(
        app,
        polling_interval=dc.polling_interval,
        batch_size=dc.batch_size,
        concurrency_maintenance_interval=dc.concurrency_maintenance_interval,
        name=name,
        supervisor_id=supervisor_id,
    )


def _make_scheduler(app: App, name: str, supervisor_id: int | None) -> Actor:
    return Scheduler(app, name=name, supervisor_id=supervisor_id)
