"""Stalwart's Prometheus metrics (prometheus-client, the ``metrics`` extra).

Names follow Prometheus' rules: counters end in ``_total``, times are in seconds.
Counted where the fact is certain:

- ``stalwart_jobs_enqueued_total{queue,task}``: by the process that enqueued;
- ``stalwart_jobs_finished_total{queue,task,outcome}``, ``stalwart_job_duration_seconds``
  and ``stalwart_job_pickup_delay_seconds``: by the worker, once the attempt's result
  is written (a result dropped because the job was handed elsewhere is not counted,
  and a job run again after a crash is counted once per attempt that was recorded);
- ``outcome="crashed"``: by the supervisor that charged the crash.

The gauges read from the database at scrape time are in `gauges.py`.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, Counter, Histogram, values

__all__ = ["DURATION_BUCKETS", "OUTCOMES", "PICKUP_BUCKETS", "Metrics"]

OUTCOMES = ("succeeded", "failed", "retried", "discarded", "crashed", "cancelled", "timeout")
DURATION_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0,
)  # fmt: skip
PICKUP_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0,
    3600.0,
)  # fmt: skip


class Metrics:
    """The metric objects, on prometheus-client's default registry, and cheap ways to
    count (label children are looked up once per label set, then kept)."""

    def __init__(self, multiprocess: bool = False) -> None:
        if multiprocess and not getattr(values.ValueClass, "_multiprocess", False):
            # prometheus-client picks its value class when it is first imported; the
            # multiprocess directory may have been set after that (the app imported it).
            values.ValueClass = values.get_value_class()  # type: ignore[no-untyped-call]
        self.multiprocess = multiprocess
        self.enqueued_total = Counter(
            "stalwart_jobs_enqueued", "Jobs enqueued.", ["queue", "task"], registry=REGISTRY
        )
        self.finished_total = Counter(
            "stalwart_jobs_finished",
            "Attempts ended, by outcome: succeeded, failed (for good), retried, discarded, "
            "crashed (a crash charged), cancelled, timeout.",
            ["queue", "task", "outcome"],
            registry=REGISTRY,
        )
        self.duration = Histogram(
            "stalwart_job_duration_seconds",
            "How long attempts ran, start to end.",
            ["queue", "task"],
            buckets=DURATION_BUCKETS,
            registry=REGISTRY,
        )
        self.pickup_delay = Histogram(
            "stalwart_job_pickup_delay_seconds",
            "From the time a job was due (enqueued, scheduled, or its retry time) to the "
            "start of the attempt.",
            ["queue"],
            buckets=PICKUP_BUCKETS,
            registry=REGISTRY,
        )
        self._counters: dict[tuple[str, ...], Counter] = {}
        self._histograms: dict[tuple[str, ...], Histogram] = {}

    def _count(self, metric: Counter, *labels: str) -> Counter:
        key = (metric._name, *labels)
        child = self._counters.get(key)
        if child is None:
            child = self._counters[key] = metric.labels(*labels)
        return child

    def _histogram(self, metric: Histogram, *labels: str) -> Histogram:
        key = (metric._name, *labels)
        child = self._histograms.get(key)
        if child is None:
            child = self._histograms[key] = metric.labels(*labels)
        return child

    def enqueued(self, queue: str, task: str, n: int = 1) -> None:
        self._count(self.enqueued_total, queue, task).inc(n)

    def finished(
        self,
        queue: str,
        task: str,
        outcome: str,
        duration: float | None = None,
        pickup_delay: float | None = None,
    ) -> None:
        self._count(self.finished_total, queue, task, outcome).inc()
        if duration is not None:
            self._histogram(self.duration, queue, task).observe(max(0.0, duration))
        if pickup_delay is not None:
            self._histogram(self.pickup_delay, queue).observe(max(0.0, pickup_delay))
