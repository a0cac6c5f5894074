"""Readiness and liveness, as Kubernetes probes ask them.

- Ready: the database answers and its schema has every migration (else 503 with the
  reason as JSON). Checked on a probe store (`open_store(..., probe=True)`): its
  connections are checked before use and time out soon.
- Live: the supervisor's loop went round recently (`Pulse`, a cell of memory the
  supervisor writes each turn and its probe child reads).
"""

from __future__ import annotations

import hmac
import mmap
import struct
import threading
import time
from typing import Any

from ..store import Store

__all__ = ["LIVENESS_S", "Pulse", "Readiness", "bearer_ok", "liveness"]

# The supervisor's loop turns ten times a second; it may wait on the database (a
# heartbeat, a recovery) for a while, so only a long silence means it is stuck.
LIVENESS_S = 30.0
_CELL = struct.Struct("d")


class Pulse:
    """The supervisor's last turn (time.monotonic(), one clock for all processes of the
    host), in memory shared with the children it forks."""

    def __init__(self) -> None:
        self._map = mmap.mmap(-1, _CELL.size)
        self.beat()

    def beat(self) -> None:
        _CELL.pack_into(self._map, 0, time.monotonic())

    def age(self) -> float:
        """Seconds since the last beat."""
        return time.monotonic() - float(_CELL.unpack_from(self._map, 0)[0])


def liveness(pulse: Pulse | None, threshold: float = LIVENESS_S) -> tuple[bool, dict[str, Any]]:
    if pulse is None:
        return True, {"status": "alive"}
    age = pulse.age()
    if age > threshold:
        reason = f"the supervisor's loop has not turned for {age:.0f} s (limit {threshold:g} s)"
        return False, {"status": "stuck", "reason": reason, "loop_age_seconds": round(age, 3)}
    return True, {"status": "alive", "loop_age_seconds": round(age, 3)}


class Readiness:
    """The database answers and is migrated; answers are kept for ``cache_s`` so a burst
    of probes is one check."""

    def __init__(self, store: Store, cache_s: float = 0.5) -> None:
        self.store, self.cache_s = store, cache_s
        self._lock = threading.Lock()
        self._last: tuple[float, bool, dict[str, Any]] | None = None

    def check(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            now = time.monotonic()
            if self._last is not None and now - self._last[0] < self.cache_s:
                return self._last[1], self._last[2]
            ok, body = self._check()
            self._last = (time.monotonic(), ok, body)
            return ok, body

    def _check(self) -> tuple[bool, dict[str, Any]]:
        try:
            self.store.database_ping()
            pending = self.store.pending_migrations()
        except Exception as exc:
            return False, {"status": "unavailable", "reason": f"database: {_one_line(exc)}"}
        if pending:
            reason = f"migrations {', '.join(pending)} are pending: run `stalwart migrate`"
            return False, {"status": "not_migrated", "reason": reason}
        return True, {"status": "ready"}


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return " ".join(str(orig).split())[:500] or type(orig).__name__


def bearer_ok(header: str | None, token: str) -> bool:
    """``Authorization: Bearer <token>``, compared in constant time."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())
