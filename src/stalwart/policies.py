"""What a task's jobs must respect: how failures are retried (`Retry`), how many run at
once (`Limit`), how often they may start (`Rate`)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


@dataclass(frozen=True)
class Retry:
    """How often a failing task is tried, and how long to wait between attempts.

    ``attempts`` counts every run, the first included. The delay before attempt n+1,
    in seconds, after n failed attempts:

    - ``"exponential"``: ``base * 2 ** (n - 1)``
    - ``"linear"``: ``base * n``
    - ``"constant"``: ``base``
    - a callable: ``backoff(n)``

    capped at ``max_delay``; with ``jitter`` the delay is multiplied by a random factor
    in [0.5, 1.0] so a burst of failures does not retry as a burst. Only exceptions that
    are instances of ``on`` are retried; others fail the job at once.
    """

    attempts: int = 1
    backoff: str | Callable[[int], float] = "exponential"
    base: float = 1.0
    max_delay: float = 3600.0
    jitter: bool = True
    on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or self.attempts < 1:
            raise ValueError(f"Retry attempts must be an integer >= 1, got {self.attempts!r}")
        if isinstance(self.backoff, str) and self.backoff not in (
            "exponential",
            "linear",
            "constant",
        ):
            raise ValueError(
                f"Retry backoff {self.backoff!r} is not one of exponential, linear, "
                "constant or a callable"
            )
        if self.base < 0 or self.max_delay < 0:
            raise ValueError("Retry base and max_delay must be >= 0")

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        """Seconds to wait after ``failed_attempts`` failures (the formula above)."""
        n = failed_attempts
        if callable(self.backoff):
            raw = float(self.backoff(n))
        elif self.backoff == "exponential":
            raw = self.base * 2 ** (n - 1)
        elif self.backoff == "linear":
            raw = self.base * n
        else:
            raw = self.base
        capped = min(max(raw, 0.0), self.max_delay)
        if self.jitter:
            capped *= (rng or random).uniform(0.5, 1.0)
        return capped

    def should_retry(self, failed_attempts: int, exc: BaseException) -> bool:
        return failed_attempts < self.attempts and isinstance(exc, self.on)


NO_RETRY = Retry()


@dataclass(frozen=True)
class Limit:
    """A concurrency limit: at most ``to`` jobs with the same key run at once.

    ``key`` is called with the job's arguments (``key(*args, **kwargs)``) and returns
    the part of the key that varies (an account id, say); jobs of tasks that share a
    ``group`` share the limit (default: the task's own name). A job over the limit is
    blocked — never lost — and runs when a slot frees, in priority then FIFO order; with
    ``on_conflict="discard"`` it fails at once with a ``Discarded`` error instead.
    ``duration`` bounds how long a slot is held without being given back: if the holder
    dies, the slot frees itself after it.
    """

    to: int = 1
    key: Callable[..., object] | None = None
    duration: timedelta = timedelta(minutes=3)
    group: str | None = None
    on_conflict: str = "block"

    def __post_init__(self) -> None:
        if not isinstance(self.to, int) or self.to < 1:
            raise ValueError(f"Limit to must be an integer >= 1, got {self.to!r}")
        if self.on_conflict not in ("block", "discard"):
            raise ValueError(
                f"Limit on_conflict must be 'block' or 'discard', got {self.on_conflict!r}"
            )
        if self.duration.total_seconds() <= 0:
            raise ValueError("Limit duration must be positive")

    def semaphore(
        self, task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        part = "" if self.key is None else str(self.key(*args, **kwargs))
        return {
            "key": f"{self.group or task_name}/{part}"[:255],
            "to": self.to,
            "duration": self.duration.total_seconds(),
            "on_conflict": self.on_conflict,
        }


@dataclass(frozen=True)
class Rate:
    """A start rate: at most ``limit`` jobs with the same key start per ``per``, across
    every worker and host.

    ``key`` is called with the job's arguments like `Limit`'s, ``group`` shares the
    rate between tasks (default: the task's own name). A job over the rate waits —
    never dropped, never failed, FIFO within its key — until a start frees. Measured on
    start times: in any window of length ``per`` at most ``limit`` of the key's jobs
    start. Several rates and limits on one task all apply.
    """

    limit: int
    per: timedelta = timedelta(seconds=1)
    key: Callable[..., object] | None = None
    group: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or isinstance(self.limit, bool) or self.limit < 1:
            raise ValueError(f"Rate limit must be an integer >= 1, got {self.limit!r}")
        if not isinstance(self.per, timedelta) or self.per.total_seconds() <= 0:
            raise ValueError(f"Rate per must be a positive timedelta, got {self.per!r}")
        if self.limit > 10_000:
            raise ValueError("Rate limit is at most 10,000 starts per window")

    def bucket(
        self, task_name: str, args: Sequence[Any], kwargs: Mapping[str, Any]
    ) -> dict[str, Any]:
        part = "" if self.key is None else str(self.key(*args, **kwargs))
        return {
            "key": f"{self.group or task_name}/{part}"[:255],
            "limit": self.limit,
            "per": self.per.total_seconds(),
        }
