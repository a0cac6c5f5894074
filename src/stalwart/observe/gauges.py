"""What a scrape reads from the database (prometheus-client collector): the same for
every target that serves it (a supervisor's probe server, the dashboard), so aggregate
these with ``max``, not ``sum``, across targets.

- ``stalwart_database_up``: 1 if the reads below answered, else 0 (and nothing else);
- ``stalwart_queue_jobs{queue,state}``: ready, scheduled, running, blocked, failed;
- ``stalwart_queue_oldest_ready_age_seconds{queue}``: how long its oldest ready job has
  waited (0 when none);
- ``stalwart_queue_paused{queue}``;
- ``stalwart_processes{kind}``: processes with a fresh heartbeat, by kind.

Counts are GROUP BYs of the execution tables' indexes (`store/reads/queues.py`), which
hold only unfinished and failed jobs, and never read `stalwart_jobs`.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..store import Store, utcnow

__all__ = ["STATES", "DatabaseCollector"]

STATES = ("READY", "SCHEDULED", "RUNNING", "BLOCKED", "FAILED")


class DatabaseCollector(Collector):
    def __init__(self, store: Store, alive_threshold: float) -> None:
        self.store, self.alive_threshold = store, alive_threshold

    def describe(self) -> Iterable[GaugeMetricFamily]:
        return []  # no reads when registered, only when scraped

    def collect(self) -> Iterable[GaugeMetricFamily]:
        up = GaugeMetricFamily("stalwart_database_up", "1 if the database answered this scrape.")
        try:
            queues = self.store.queues_overview()
            kinds = self.store.processes_by_kind(self.alive_threshold)
        except Exception:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        jobs = GaugeMetricFamily(
            "stalwart_queue_jobs", "Jobs per queue and state.", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "stalwart_queue_oldest_ready_age_seconds",
            "How long the oldest ready job of the queue has waited.",
            labels=["queue"],
        )
        paused = GaugeMetricFamily(
            "stalwart_queue_paused", "1 if the queue is paused.", labels=["queue"]
        )
        now = utcnow()
        for q in queues:
            for state in STATES:
                jobs.add_metric([q.name, state.lower()], q.count(state))
            age = (now - q.oldest_ready_at).total_seconds() if q.oldest_ready_at else 0.0
            oldest.add_metric([q.name], max(0.0, age))
            paused.add_metric([q.name], 1.0 if q.paused else 0.0)
        processes = GaugeMetricFamily(
            "stalwart_processes", "Processes with a fresh heartbeat, by kind.", labels=["kind"]
        )
        for kind in sorted({"supervisor", "worker", "dispatcher", "scheduler", *kinds}):
            processes.add_metric([kind], kinds.get(kind, 0))
        yield from (jobs, oldest, paused, processes)
