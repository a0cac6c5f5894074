"""How many claimed jobs a worker keeps waiting for a thread: fixed, or sized to the work.

``prefetch = "auto"`` (the default) keeps about ``AUTO_TARGET_S`` of work waiting, from
how long this worker's jobs have recently taken: short jobs get a deep buffer (one claim
per ~100 jobs instead of one per job: the difference between ~1,000 and ~20,000 no-op
jobs/s per worker), slow jobs get none, so they stay spread over every worker and a
high-priority job enqueued later waits behind at most ~50 ms of buffered work. The cap
bounds what one worker holds (and, with exact crash blame, hands back uncharged) when it
dies.
"""

from __future__ import annotations

# The buffer holds about this much work, at the rate this worker runs jobs.
AUTO_TARGET_S = 0.05
# ... and never more jobs than this.
AUTO_CAP = 200
# Weight of the newest duration in the moving average.
_ALPHA = 0.05

Prefetch = int | str  # a count, or "auto"


def check_prefetch(value: object) -> Prefetch:
    """A prefetch setting as configured: an integer >= 0 or "auto"."""
    if value == "auto":
        return "auto"
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 100_000:
        return value
    raise ValueError(f'expected an integer 0-100000 or "auto", got {value!r}')


class PrefetchSize:
    """The current prefetch depth: ``fixed`` jobs, or (auto) sized from observed job
    durations. ``observe`` is called by every thread that finishes a job."""

    def __init__(self, setting: Prefetch, threads: int) -> None:
        self.setting = check_prefetch(setting)
        self.threads = threads
        self._mean_s: float | None = None
        # Before the first job ends nothing is known: one claim's worth per thread.
        self.current = threads if self.setting == "auto" else int(self.setting)

    @property
    def auto(self) -> bool:
        return self.setting == "auto"

    @property
    def most(self) -> int:
        """The deepest the buffer can get."""
        return AUTO_CAP if self.setting == "auto" else int(self.setting)

    def observe(self, seconds: float) -> None:
        if not self.auto:
            return
        # No lock: two threads racing here lose one sample of a moving average, which
        # costs less than a lock taken for every job.
        mean = self._mean_s
        mean = seconds if mean is None else mean + _ALPHA * (seconds - mean)
        self._mean_s = mean
        rate = self.threads / max(mean, 1e-6)  # jobs/s this worker can run
        self.current = max(0, min(AUTO_CAP, int(rate * AUTO_TARGET_S)))
