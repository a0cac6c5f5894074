"""LISTEN/NOTIFY wake-ups (PostgreSQL): a worker waiting for work hears of new ready
jobs at once instead of at its next poll.

Senders notify once per queue per transaction (`PostgresStore.notify_ready`;
PostgreSQL also folds identical notifications of one transaction into one), never once
per row. Polling stays the fallback: while the listener is connected an idle worker
polls only every `notify_polling_interval`; when the connection is lost or made again
the worker is woken ("" for any queue) to poll at once, and polls at its shorter idle
interval until the listener is back.

One listener per worker process (its claim threads share it), none per thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy.engine import make_url

CHANNEL = "stalwart_ready"
log = logging.getLogger("stalwart.notify")


class ReadyListener:
    """A thread holding a LISTEN connection; calls ``on_ready(queue)`` per notification."""

    def __init__(self, url: str, on_ready: Callable[[str], None], stopping: threading.Event):
        parsed = make_url(url)
        self.conninfo = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
        self.on_ready = on_ready
        self.stopping = stopping
        self.thread = threading.Thread(target=self._main, name="stalwart-listen", daemon=True)
        self.connected = False

    def start(self) -> None:
        self.thread.start()

    def _main(self) -> None:
        import psycopg  # only where there is something to listen to: PostgreSQL

        backoff = 0.1
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self.conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    backoff = 0.1
                    self._connected(True)
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.on_ready(note.payload)
            except psycopg.Error as exc:
                log.debug("listener connection lost (%s); polling covers meanwhile", exc)
                self._connected(False)
                time.sleep(backoff)
                backoff = min(5.0, backoff * 2)

    def _connected(self, up: bool) -> None:
        # Notifications may have been missed either way: a poll now finds their jobs.
        was, self.connected = self.connected, up
        if up or was:
            self.on_ready("")
