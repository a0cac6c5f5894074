"""One clock for the whole fleet: the database's.

Every time that decides when something runs or dies (a scheduled job's due time, a
retry's, heartbeats and the pruning of the dead, semaphore and rate-limit expiry,
recurring run times, ``expires``) is read off a `Clock`: this host's clock corrected by
an offset measured against the database. Hosts whose clocks disagree so still agree on
every such time. Reading the host's clock plus an offset costs nothing per call; the
offset is measured when a process starts and again now and then with its heartbeat
(`processes/base.py`), one small SELECT each time.

SQLite is a file on this machine: its clock is the host's, the offset is 0, and nothing
is measured.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from ..errors import DatabaseUnavailable

log = logging.getLogger("stalwart.clock")

DEFAULT_TOLERANCE = 30.0
# A process with no heartbeat to measure its clock (a web app that enqueues) measures it
# on first use and again this often (`Clock.fresh`).
RESYNC_S = 300.0
# An offset that moved by less than this since it was last told is not told again.
_RETELL_AFTER = 1.0
# A read of the database's time is tried again (up to _TRIES reads) while its round trip
# takes longer than this: the measure's error is half the round trip.
_FAST_S = 0.005
_TRIES = 3


class Clock:
    """This host's time corrected to the database's: ``time()`` and ``now()``."""

    def __init__(
        self, read: Callable[[], datetime] | None, tolerance: float = DEFAULT_TOLERANCE
    ) -> None:
        # ``read`` returns the database's time (naive UTC); None: the host's clock is it.
        self._read = read
        self.tolerance = tolerance
        # Seconds to add to this host's time to get the database's.
        self.offset = 0.0
        # time.monotonic() of the last measure; None: never measured.
        self.measured_at: float | None = None
        # The offset last reported as out of tolerance (None: within it).
        self._told: float | None = None

    @property
    def measures(self) -> bool:
        """False where the host's clock is the database's (nothing to measure)."""
        return self._read is not None

    def time(self) -> float:
        """The database's time, in seconds since the epoch (like time.time())."""
        return time.time() + self.offset

    def now(self) -> datetime:
        """The database's time, naive UTC (like every timestamp column)."""
        return datetime.fromtimestamp(self.time(), UTC).replace(tzinfo=None)

    def sync(self, who: str = "this process") -> float:
        """Measure the offset against the database; return it.

        The database read its time somewhere within the round trip, so its midpoint is
        off by at most half the round trip: a round trip slower than `_FAST_S` (the first
        on a new connection) is tried again, up to `_TRIES` reads, keeping the fastest. An
        offset within that error is no offset (a database on this host's clock reads as
        exactly 0). Raises what the read raises (DatabaseUnavailable).
        """
        if self._read is None:
            self.measured_at = time.monotonic()
            return self.offset
        best: tuple[float, float] | None = None  # (round trip, offset)
        for _ in range(_TRIES):
            before = time.time()
            database = self._read()
            after = time.time()
            sample = (after - before, _epoch(database) - (before + after) / 2)
            best = sample if best is None or sample < best else best
            if sample[0] < _FAST_S:
                break
        assert best is not None
        trip, offset = best
        self.offset = offset if abs(offset) > trip / 2 else 0.0
        self.measured_at = time.monotonic()
        self._tell(who)
        return self.offset

    def fresh(self, every: float = RESYNC_S) -> datetime:
        """`now()`, measuring the offset first if it is older than ``every`` seconds;
        if the database cannot answer, the last offset stands (the call that follows
        says what is wrong)."""
        if self.measures and self.due(every):
            with contextlib.suppress(DatabaseUnavailable):
                self.sync()
        return self.now()

    def due(self, every: float) -> bool:
        """Whether the last measure is older than ``every`` seconds (or never was)."""
        if self.measured_at is None:
            return True
        return time.monotonic() - self.measured_at >= every

    def _tell(self, who: str) -> None:
        """Say loudly when this host's clock is off by more than the tolerance, once per
        change (not at every measure); and once when it is back within it."""
        if abs(self.offset) <= self.tolerance:
            if self._told is not None:
                log.warning(
                    "%s: this host's clock is back within clock_tolerance (%g s) of the "
                    "database's (off by %.3f s)",
                    who,
                    self.tolerance,
                    -self.offset,
                )
                self._told = None
            return
        if self._told is not None and abs(self.offset - self._told) < _RETELL_AFTER:
            return
        self._told = self.offset
        log.error(
            "%s: this host's clock is %.1f s %s the database's (more than clock_tolerance, "
            "%g s): Stalwart corrects every time it uses by the measured offset, but fix "
            "this host's time sync (NTP): other programs here trust its clock",
            who,
            abs(self.offset),
            "behind" if self.offset > 0 else "ahead of",
            self.tolerance,
        )


def describe_offset(offset: float | None) -> str:
    """A process row's clock offset for people: '+120.0 s ahead', 'in step'."""
    if offset is None:
        return "-"
    if abs(offset) < 0.05:
        return "in step"
    return f"{abs(offset):.1f} s {'behind' if offset > 0 else 'ahead'}"


def _epoch(at: datetime) -> float:
    """Seconds since the epoch of a naive-UTC datetime."""
    return at.replace(tzinfo=UTC).timestamp()
