"""The supervisor: forks the configured actors, replaces the ones that die, prunes
dead processes (on any host) and decides the fate of the jobs they held.

The supervisor itself runs a single thread (so forking stays safe): one loop that
reaps children, heartbeats, prunes, and checks for drain, a few times a second.
Signals: TERM/INT stop gracefully (children finish their jobs up to
``shutdown_timeout``, then hand them back); QUIT stops at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..config import DispatcherConfig, WorkerConfig
from ..errors import DatabaseUnavailable, ProcessExited, ProcessPruned, error_record
from ..store import utcnow
from .base import Actor, Process, interruptible_sleep
from .dispatcher import Dispatcher
from .fork import fork_actor
from .scheduler import Scheduler
from .worker import Worker

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.supervisor")

# A child that dies sooner than this after its start counts as failing to start.
QUICK_DEATH_S = 5.0
MAX_RESTART_DELAY_S = 60.0
LOOP_INTERVAL_S = 0.1


@dataclass
class Slot:
    """One configured child: what to run, and its current process if any."""

    kind: str
    make: Callable[[str, int | None], Actor]
    pid: int | None = None
    name: str = ""
    started_at: float = 0.0
    quick_deaths: int = 0
    restart_at: float = 0.0
    exits: list[int] = field(default_factory=list)


class Supervisor(Process):
    kind = "supervisor"

    def __init__(self, app: App, *, drain: bool = False, drain_within: float = 10.0) -> None:
        name = f"supervisor-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        super().__init__(app, name=name)
        self.config = app.config
        self.drain = drain
        # With drain: scheduled jobs due later than this do not keep us running.
        self.drain_within = drain_within
        # What draining left behind, said when it stops: "N scheduled job(s) left, ...".
        self.drain_report: str | None = None
        self.slots = self._slots()
        self._stop_requested: str | None = None  # "graceful" | "immediate"
        self._next_heartbeat = 0.0
        self._next_prune = 0.0
        self._drain_quiet = 0
        # When the database last became reachable for us: after an outage, others need
        # a heartbeat or two before their stale rows mean they are dead.
        self._db_ok_since = time.monotonic()

    # ---- configuration → slots ----

    def _slots(self) -> list[Slot]:
        slots = [
            Slot("worker", partial(_make_worker, self.app, wc))
            for wc in self.config.workers
            for _ in range(wc.processes)
        ]
        slots += [
            Slot("dispatcher", partial(_make_dispatcher, self.app, dc))
            for dc in self.config.dispatchers
        ]
        if self.config.scheduler:  # one per supervisor, unless `scheduler = false`
            slots.append(Slot("scheduler", partial(_make_scheduler, self.app)))
        return slots

    def metadata(self) -> dict[str, Any]:
        return {"children": len(self.slots)}

    def should_stop(self) -> bool:
        return self._stop_requested is not None

    def pause(self, seconds: float) -> None:
        interruptible_sleep(seconds, self.should_stop)

    # ---- main loop ----

    def run(self) -> int:
        self._install_signals()
        with contextlib.suppress(DatabaseUnavailable):  # stopped before the database came
            self.register()
        log.info("%s started with %d children", self.name, len(self.slots))
        for slot in self.slots:
            self._start(slot)
        try:
            while self._stop_requested is None:
                self._tick()
                time.sleep(LOOP_INTERVAL_S)
        finally:
            self._shutdown()
        return 0

    def _tick(self) -> None:
        now = time.monotonic()
        self._reap()
        for slot in self.slots:
            if slot.pid is None and now >= slot.restart_at:
                self._start(slot)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_interval
            self._heartbeat()
        if now >= self._next_prune:
            self._next_prune = now + self.config.heartbeat_interval
            self._prune()
        if self.drain:
            self._check_drained()

    def _heartbeat(self) -> None:
        beat = self.heartbeat()
        if beat is None:
            self._db_ok_since = float("inf")
            return
        if beat is False:
            # Pruned by another supervisor while we were stalled: register anew.
            log.error("%s was pruned by another process; registering again", self.name)
            with contextlib.suppress(DatabaseUnavailable):
                self.register()
        if self._db_ok_since == float("inf"):
            self._db_ok_since = time.monotonic()

    # ---- children ----

    def _start(self, slot: Slot) -> None:
        slot.name = f"{slot.kind}-{socket.gethostname()}-{uuid.uuid4().hex[:10]}"
        actor_name, supervisor_id = slot.name, self.process_id
        slot.pid = fork_actor(self.app, lambda: slot.make(actor_name, supervisor_id))
        slot.started_at = time.monotonic()
        log.info("started %s (pid %d)", slot.name, slot.pid)

    def _exited(self) -> list[tuple[Slot, int, int]]:
        """Children that exited since the last look: (slot, pid, exit code or -signal)."""
        out: list[tuple[Slot, int, int]] = []
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return out
            if pid == 0:
                return out
            slot = next((s for s in self.slots if s.pid == pid), None)
            if slot is not None:
                slot.pid = None
                out.append((slot, pid, os.waitstatus_to_exitcode(status)))

    def _reap(self) -> None:
        for slot, pid, code in self._exited():
            slot.exits.append(code)
            lived = time.monotonic() - slot.started_at
            log.log(
                logging.INFO if code == 0 and self._stop_requested else logging.WARNING,
                "%s (pid %d) exited with %s after %.1f s",
                slot.name,
                pid,
                f"signal {-code}" if code < 0 else f"code {code}",
                lived,
            )
            self._recover_child(slot.name, pid, code)
            slot.quick_deaths = slot.quick_deaths + 1 if lived < QUICK_DEATH_S else 0
            delay = (
                0.0
                if slot.quick_deaths == 0
                else min(MAX_RESTART_DELAY_S, 0.5 * 2 ** (slot.quick_deaths - 1))
            )
            if delay:
                log.warning("%s keeps dying at start; restarting in %.1f s", slot.kind, delay)
            slot.restart_at = time.monotonic() + delay

    def _recover_child(self, name: str, pid: int, code: int) -> None:
        """A child is gone: its jobs are crashed jobs (retried or failed by policy)."""
        try:
            row = self.store.process_by_name(name)
            if row is None:
                return
            how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
            self._recover(row.id, ProcessExited(f"process {name} (pid {pid}) {how}"))
        except DatabaseUnavailable as exc:
            # Its row stays; pruning finds it once its heartbeat is stale.
            log.warning("could not recover jobs of %s now: %s", name, exc)

    def _recover(self, process_id: int, error: Exception) -> None:
        retried, failed = self.store.claimed_recover(
            process_id, error_record(error, ""), self._should_retry
        )
        if retried or failed:
            log.warning(
                "jobs of a dead process: %d back to ready, %d failed (%s)",
                len(retried),
                len(failed),
                type(error).__name__,
            )

    def _should_retry(self, task_name: str, crashes: int) -> bool:
        task = self.app.tasks.get(task_name)
        on_crash = task.options.on_crash if task else "retry"
        max_crashes = task.options.max_crashes if task else self.config.max_crashes
        # The poison guard: a job that kills its worker every time ends up failed.
        return on_crash == "retry" and crashes < max_crashes

    def _prune(self) -> None:
        """Processes anywhere whose heartbeat is stale are dead: recover their jobs.

        Our own children are never pruned (waitpid tells us when they die), and nothing
        is pruned until the database has been reachable for two heartbeats: after an
        outage every heartbeat is stale, not every process dead.
        """
        grace = 2 * self.config.heartbeat_interval
        if time.monotonic() - self._db_ok_since < grace:
            return
        mine = {slot.name for slot in self.slots if slot.pid is not None}
        try:
            stale = self.store.processes_stale(timedelta(seconds=self.config.alive_threshold))
            for row in stale:
                if row.id == self.process_id or row.name in mine:
                    continue
                log.warning(
                    "pruning %s %s (pid %d on %s): no heartbeat since %s",
                    row.kind,
                    row.name,
                    row.pid,
                    row.hostname,
                    row.last_heartbeat_at,
                )
                self._recover(
                    row.id,
                    ProcessPruned(
                        f"process {row.name} (pid {row.pid} on {row.hostname}) stopped "
                        f"heartbeating; last heartbeat {row.last_heartbeat_at} UTC"
                    ),
                )
        except DatabaseUnavailable as exc:
            log.warning("could not prune dead processes now: %s", exc)

    def _check_drained(self) -> None:
        try:
            busy = self.store.jobs_any_due(timedelta(seconds=self.drain_within))
            left = None if busy else self.store.scheduled_summary()
        except DatabaseUnavailable:
            return
        # Twice in a row, a loop apart: a job between tables is never missed.
        self._drain_quiet = 0 if busy else self._drain_quiet + 1
        if self._drain_quiet >= 2 and left is not None:
            self.drain_report = drain_report(left[0], left[1], utcnow())
            log.info("drained: %s", self.drain_report)
            self._stop_requested = "graceful"

    # ---- stopping ----

    def _install_signals(self) -> None:
        def graceful(signum: int, _frame: FrameType | None) -> None:
            self._stop_requested = "graceful"

        def immediate(signum: int, _frame: FrameType | None) -> None:
            self._stop_requested = "immediate"

        signal.signal(signal.SIGTERM, graceful)
        signal.signal(signal.SIGINT, graceful)
        signal.signal(signal.SIGQUIT, immediate)

    def _shutdown(self) -> None:
        immediate = self._stop_requested == "immediate"
        sig = signal.SIGQUIT if immediate else signal.SIGTERM
        live = [s for s in self.slots if s.pid is not None]
        for slot in live:
            _signal(slot.pid, sig)
        if immediate:
            return
        # Children finish running jobs up to shutdown_timeout; then they are killed.
        deadline = time.monotonic() + self.config.shutdown_timeout + 5.0
        while any(s.pid is not None for s in self.slots) and time.monotonic() < deadline:
            self._reap_exiting()
            time.sleep(0.05)
        for slot in self.slots:
            if slot.pid is not None:
                log.warning("%s did not stop in time; killing it", slot.name)
                _signal(slot.pid, signal.SIGKILL)
                os.waitpid(slot.pid, 0)
                self._recover_child(slot.name, slot.pid, -signal.SIGKILL)
                slot.pid = None
        self.deregister()
        log.info("%s stopped", self.name)

    def _reap_exiting(self) -> None:
        for slot, pid, code in self._exited():
            if code != 0:
                self._recover_child(slot.name, pid, code)


def drain_report(scheduled: int, next_due: datetime | None, now: datetime) -> str:
    """What a drain leaves behind, in one line."""
    done = "nothing ready, running or blocked"
    if not scheduled or next_due is None:
        return f"{done}; no scheduled job left"
    wait = max(0.0, (next_due - now).total_seconds())
    return (
        f"{done}; left {scheduled} scheduled job(s), the next due at "
        f"{next_due:%Y-%m-%d %H:%M:%S} UTC (in {wait:,.0f} s)"
    )


def _make_worker(app: App, wc: WorkerConfig, name: str, supervisor_id: int | None) -> Actor:
    return Worker(
        app,
        queues=wc.queues,
        threads=wc.threads,
        prefetch=wc.prefetch,
        polling_interval=wc.polling_interval,
        name=name,
        supervisor_id=supervisor_id,
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


def _signal(pid: int | None, sig: int) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
