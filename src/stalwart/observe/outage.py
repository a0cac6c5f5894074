"""A database outage, told once: a line when it starts, a summary every minute while it
lasts, and a line when the database answers again.

Every part of a process that talks to the database (a worker's claim loop, its
completer, the heartbeat) reports to the process's one `OutageLog`, so an outage of
twenty seconds is three lines, not one per try of each part.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["OutageLog"]

SUMMARY_EVERY_S = 60.0


class OutageLog:
    def __init__(
        self, who: str, logger: logging.Logger, summary_every: float = SUMMARY_EVERY_S
    ) -> None:
        self.who, self.log, self.summary_every = who, logger, summary_every
        self._lock = threading.Lock()
        self.since: float | None = None  # time.monotonic() of the first failure
        self.failures = 0
        self._last_error = ""
        self._next_summary = 0.0

    @property
    def down(self) -> bool:
        return self.since is not None

    def failed(self, exc: BaseException, retry_in: float | None = None) -> None:
        """A call to the database failed (it is retried by the caller)."""
        now = time.monotonic()
        error = " ".join(str(exc).split()) or type(exc).__name__
        error = error.removeprefix("database unavailable: ")  # said once, by us
        with self._lock:
            self.failures += 1
            self._last_error = error
            if self.since is None:
                self.since = now
                self._next_summary = now + self.summary_every
                again = "" if retry_in is None else f"; trying again in {retry_in:.1f} s"
                self.log.warning(
                    "%s: database unavailable: %s%s (backing off up to 5 s; a summary "
                    "follows every %.0f s until it is back)",
                    self.who,
                    error,
                    again,
                    self.summary_every,
                )
            elif now >= self._next_summary:
                self._next_summary = now + self.summary_every
                self.log.warning(
                    "%s: database still unavailable after %.0f s (%d failed tries; last: %s)",
                    self.who,
                    now - self.since,
                    self.failures,
                    error,
                )

    def succeeded(self) -> bool:
        """A call to the database answered; True if that ends an outage (logged once)."""
        if self.since is None:  # the common case, without the lock
            return False
        with self._lock:
            if self.since is None:
                return False
            lasted, failures = time.monotonic() - self.since, self.failures
            self.since, self.failures = None, 0
        self.log.warning(
            "%s: database is back after %.1f s (%d failed tries)", self.who, lasted, failures
        )
        return True
