"""LISTEN/NOTIFY wake-ups (PostgreSQL): a worker waiting for work hears of new ready
jobs at once instead of at its next poll.

Senders notify once per queue per transaction (`PostgresStore.notify_ready`;
PostgreSQL also folds identical notifications of one transaction into one), never once
per row. Polling stays the fallback: a lost notification delays a job by one polling
interval at most.
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
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=0.5):
                            self.on_ready(note.payload)
            except psycopg.Error as exc:
                log.debug("listener connection lost (%s); polling covers meanwhile", exc)
                time.sleep(backoff)
                backoff = min(5.0, backoff * 2)
