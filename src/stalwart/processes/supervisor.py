"""The supervisor: forks the configured actors, replaces the ones that die, recovers the
jobs of dead processes (its children, and any process anywhere whose heartbeat went
stale), and runs suspects of a crash alone.

The supervisor itself runs a single thread (so forking stays safe): one loop that
reaps children, heartbeats, prunes, and checks for drain, a few times a second.

Signals: the first TERM/INT stops gracefully — it says how many jobs are running and
how long it waits (children finish their jobs up to ``shutdown_timeout``, then hand them
back); a second one hands every job back at once and exits within about two seconds.
QUIT stops on the spot.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import time
import uuid
from datetime import datetime, timedelta
from types import FrameType
from typing import TYPE_CHECKING, Any

from ..errors import DatabaseUnavailable
from ..observe.health import Pulse
from ..observe.probe import ProbeConfig, bind
from ..store import QueueSelector
from .base import Process, interruptible_sleep
from .fork import fork_actor
from .recovery import CrashRecovery
from .slots import Slot, configured_slots, isolation_slot, probe_slot, worker_queues
from .worker import RECYCLE_EXIT_CODE

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.supervisor")

# A child that dies sooner than this after its start counts as failing to start.
QUICK_DEATH_S = 5.0
MAX_RESTART_DELAY_S = 60.0
LOOP_INTERVAL_S = 0.1
DRAIN_LOOP_INTERVAL_S = 0.01
# While a drain finds work, its look at the queues spaces out to this share of the time
# drained so far (at most DRAIN_CHECK_MAX_S): the look costs the database a scan past
# the rows the drain deleted, and a long drain may end a little later instead.
DRAIN_CHECK_SHARE = 0.05
DRAIN_CHECK_MAX_S = 0.32
# After a second Ctrl-C, children have this long to hand their jobs back and exit.
HAND_BACK_S = 1.5
# Stopping, the supervisor looks for exited children this often: often at first (an
# idle child exits within milliseconds, and a short `start --drain` waits on it), then
# less, for children finishing long jobs.
EXIT_POLL_S = (0.002, 0.02)
EXIT_POLL_FAST_FOR_S = 1.0


class Supervisor(Process):
    kind = "supervisor"

    def __init__(
        self,
        app: App,
        *,
        drain: bool = False,
        drain_within: float = 10.0,
        probe: ProbeConfig | None = None,
    ) -> None:
        name = f"supervisor-{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        super().__init__(app, name=name)
        self.config = app.config
        self.drain = drain
        # With drain: scheduled jobs due later than this do not keep us running.
        self.drain_within = drain_within
        # What draining left behind, said when it stops: "N scheduled job(s) left, ...".
        self.drain_report: str | None = None
        self.slots = configured_slots(app)
        self.recovery = CrashRecovery(app)
        self.queues = worker_queues(app)
        # The one-off child running suspects alone, while there are any.
        self.isolation: Slot | None = None
        self._look_for_suspects = True
        self._stop_requested: str | None = None  # "graceful" | "now" | "immediate"
        self._next_heartbeat = 0.0
        self._next_prune = 0.0
        self._drain_quiet = 0
        self._drain_since: float | None = None
        self._next_drain_check = 0.0
        # When the database last became reachable for us: after an outage, others need
        # a heartbeat or two before their stale rows mean they are dead.
        self._db_ok_since = time.monotonic()
        # The probe server (metrics, health): its sockets bound now, so a port in use
        # stops us here; it reads our loop's pulse for /livez.
        self.pulse: Pulse | None = None
        if probe is not None:
            self.pulse = Pulse()
            self.slots.append(probe_slot(app, bind(probe), self.pulse, probe))

    def metadata(self) -> dict[str, Any]:
        return {"children": len(self.slots)}

    def should_stop(self) -> bool:
        return self._stop_requested is not None

    def pause(self, seconds: float) -> None:
        interruptible_sleep(seconds, self.should_stop)

    def children(self) -> list[Slot]:
        return [*self.slots, *([self.isolation] if self.isolation else [])]

    # ---- main loop ----

    def run(self) -> int:
        self._install_signals()
        with contextlib.suppress(DatabaseUnavailable):  # stopped before the database came
            self.register()
        log.info("%s started with %d children", self.name, len(self.slots))
        for slot in self.slots:
            self._start(slot)
        try:
            # Draining, the loop looks often: a short drain should end when its last
            # job does, not a tenth of a second later (one cheap query per look).
            interval = DRAIN_LOOP_INTERVAL_S if self.drain else LOOP_INTERVAL_S
            while self._stop_requested is None:
                self._tick()
                if self._stop_requested is None:  # a drain that just ended stops now
                    time.sleep(interval)
        finally:
            self._shutdown()
        return 0

    def _tick(self) -> None:
        now = time.monotonic()
        if self.pulse is not None:
            self.pulse.beat()
        self._reap()
        for slot in self.slots:
            if slot.pid is None and now >= slot.restart_at:
                self._start(slot)
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.heartbeat_interval
            self._heartbeat()
            self._look_for_suspects = True
        if now >= self._next_prune:
            self._next_prune = now + self.config.heartbeat_interval
            self._prune()
        if self._look_for_suspects:
            self._run_suspects()
        if self.drain and now >= self._next_drain_check:
            self._check_drained(now)

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
        if slot.board is not None:
            slot.board.reset()
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
            slot = next((s for s in self.children() if s.pid == pid), None)
            if slot is not None:
                slot.pid = None
                out.append((slot, pid, os.waitstatus_to_exitcode(status)))

    def _reap(self) -> None:
        for slot, pid, code in self._exited():
            slot.exits.append(code)
            lived = time.monotonic() - slot.started_at
            log.log(
                logging.INFO if code in (0, RECYCLE_EXIT_CODE) else logging.WARNING,
                "%s (pid %d) exited with %s after %.1f s",
                slot.name,
                pid,
                f"signal {-code}" if code < 0 else f"code {code}",
                lived,
            )
            self._child_gone(slot, pid, code)
            if slot is self.isolation:
                self.isolation = None
                self._look_for_suspects = True
                continue
            quick = lived < QUICK_DEATH_S and code != RECYCLE_EXIT_CODE
            slot.quick_deaths = slot.quick_deaths + 1 if quick else 0
            delay = (
                0.0
                if slot.quick_deaths == 0
                else min(MAX_RESTART_DELAY_S, 0.5 * 2 ** (slot.quick_deaths - 1))
            )
            if delay:
                log.warning("%s keeps dying at start; restarting in %.1f s", slot.kind, delay)
            slot.restart_at = time.monotonic() + delay

    def _child_gone(self, slot: Slot, pid: int, code: int) -> None:
        running = slot.board.running() if slot.board is not None else None
        if self.recovery.child_gone(slot.name, pid, code, running):
            self._look_for_suspects = True

    def _prune(self) -> None:
        """Processes anywhere whose heartbeat is stale are dead: recover their jobs.

        Our own children are never pruned (waitpid tells us when they die), and nothing
        is pruned until the database has been reachable for two heartbeats: after an
        outage every heartbeat is stale, not every process dead.
        """
        if time.monotonic() - self._db_ok_since < 2 * self.config.heartbeat_interval:
            return
        mine = {slot.name for slot in self.children() if slot.pid is not None}
        if self.recovery.prune({self.process_id}, mine):
            self._look_for_suspects = True

    def _run_suspects(self) -> None:
        """Start a child that runs suspects alone, if there are any for our queues."""
        self._look_for_suspects = False
        if self.isolation is not None or not self.queues or self._stop_requested:
            return
        try:
            if not self.store.suspects_any(QueueSelector(self.queues)):
                return
        except DatabaseUnavailable:
            return
        self.isolation = isolation_slot(self.app, self.queues)
        self._start(self.isolation)

    def _check_drained(self, now: float) -> None:
        if self._drain_since is None:
            self._drain_since = now
        try:
            busy = self.store.jobs_any_due(timedelta(seconds=self.drain_within))
            left = None if busy else self.store.scheduled_summary()
        except DatabaseUnavailable:
            return
        # Twice in a row, a loop apart: a job between tables is never missed.
        self._drain_quiet = 0 if busy else self._drain_quiet + 1
        if busy:
            wait = min(DRAIN_CHECK_MAX_S, DRAIN_CHECK_SHARE * (now - self._drain_since))
            self._next_drain_check = now + wait
        if self._drain_quiet >= 2 and left is not None:
            self.drain_report = drain_report(left[0], left[1], self.store.clock.now())
            log.info("drained: %s", self.drain_report)
            self._stop_requested = "graceful"

    # ---- stopping ----

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            # The first asks for a graceful stop, a second for handing back now.
            self._stop_requested = "now" if self._stop_requested else "graceful"

        def immediate(signum: int, _frame: FrameType | None) -> None:
            self._stop_requested = "immediate"

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGQUIT, immediate)

    def running_jobs(self) -> int:
        return sum(len(s.board.running()) for s in self.children() if s.board and s.pid)

    def _shutdown(self) -> None:
        if self._stop_requested == "immediate":
            for slot in self.children():
                _signal(slot.pid, signal.SIGQUIT)
            return
        if self.drain_report is None:
            say(
                f"stalwart: stopping: {self.running_jobs()} job(s) running; waiting up to "
                f"{self.config.shutdown_timeout:g} s (shutdown_timeout) for them to finish. "
                "Press Ctrl-C again to hand them back now."
            )
        for slot in self.children():
            _signal(slot.pid, signal.SIGTERM)
        # Children finish running jobs up to shutdown_timeout; then they are killed.
        began = time.monotonic()
        deadline = began + self.config.shutdown_timeout + 5.0
        handing_back = False
        while any(s.pid is not None for s in self.children()) and time.monotonic() < deadline:
            if self._stop_requested == "now" and not handing_back:
                handing_back = True
                say("stalwart: handing every job back now.")
                for slot in self.children():
                    _signal(slot.pid, signal.SIGUSR1)
                deadline = time.monotonic() + HAND_BACK_S
            self._reap_exiting()
            fast = time.monotonic() - began < EXIT_POLL_FAST_FOR_S
            time.sleep(EXIT_POLL_S[0] if fast else EXIT_POLL_S[1])
        for slot in self.children():
            if slot.pid is not None:
                log.warning("%s did not stop in time; killing it", slot.name)
                _signal(slot.pid, signal.SIGKILL)
                os.waitpid(slot.pid, 0)
                self._killed(slot)
                slot.pid = None
        self.deregister()
        log.info("%s stopped", self.name)

    def _reap_exiting(self) -> None:
        for slot, pid, code in self._exited():
            if code not in (0, RECYCLE_EXIT_CODE):
                self._child_gone(slot, pid, code)

    def _killed(self, slot: Slot) -> None:
        """A child we killed ourselves at shutdown: its jobs go back, no crash charged."""
        running = slot.board.running() if slot.board is not None else []
        try:
            row = self.store.process_by_name(slot.name)
            if row is None:
                return
            self.store.claimed_release(
                row.id, interrupted=running, why="its worker was killed at shutdown"
            )
            self.store.process_deregister(row.id)
        except DatabaseUnavailable as exc:
            log.warning("could not hand back the jobs of %s: %s", slot.name, exc)


def say(line: str) -> None:
    """One line for the person at the terminal, whatever the log level."""
    print(line, file=sys.stderr, flush=True)


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


def _signal(pid: int | None, sig: int) -> None:
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
