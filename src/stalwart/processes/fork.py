"""Forking an actor into a process of its own: used by the supervisor for every child
and by `stalwart bench` for its workers."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING

from ..collector import fork_frozen
from .base import Actor

if TYPE_CHECKING:
    from ..app import App

log = logging.getLogger("stalwart.supervisor")


def fork_actor(app: App, make: Callable[[], Actor]) -> int:
    """Fork a child that runs ``make()``'s actor until it stops; return its pid."""
    sys.stdout.flush()
    sys.stderr.flush()
    # A stop signal that comes before the child has its handlers must wait for them
    # (the handlers it inherits belong to the parent's objects): blocked across fork,
    # unblocked by the child once its own are in place.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    pid = fork_frozen()
    if pid == 0:  # the child
        code = 1
        try:
            code = run_child(app, make)
        finally:
            logging.shutdown()
            os._exit(code)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return pid


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGUSR1, signal.SIGINT, signal.SIGQUIT}


def run_child(app: App, make: Callable[[], Actor]) -> int:
    """The body of a forked child: fresh connections, own signals, watch the parent."""
    app.after_fork()
    actor = make()
    parent = os.getppid()

    def graceful(signum: int, _frame: FrameType | None) -> None:
        actor.stop()

    def now(signum: int, _frame: FrameType | None) -> None:
        actor.hand_back_now()

    # The supervisor decides: SIGTERM to finish up, SIGUSR1 to hand everything back at
    # once (a second Ctrl-C), SIGQUIT to exit on the spot. A terminal's Ctrl-C reaches
    # the whole process group: children leave it to their supervisor.
    signal.signal(signal.SIGTERM, graceful)
    signal.signal(signal.SIGUSR1, now)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGQUIT, lambda *_: os._exit(0))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)

    def watch_parent() -> None:
        # If the supervisor dies (even by SIGKILL), stop gracefully instead of orphaning.
        while not actor.stopping.wait(0.5):
            if os.getppid() != parent:
                log.warning("%s: supervisor is gone; stopping", actor.name)
                actor.stop()
                return

    threading.Thread(target=watch_parent, name=f"{actor.name}-parent", daemon=True).start()
    try:
        actor.run()
    except Exception:
        log.exception("%s crashed", actor.name)
        return 1
    return actor.exit_code
