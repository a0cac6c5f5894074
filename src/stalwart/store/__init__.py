"""The store: the only place in Stalwart that holds SQL.

`Store` gathers one mixin per table family; each method is a noun-verb operation
(`ready_claim`, `claimed_complete`, `scheduled_dispatch_due`, ...) running in one short
transaction. Actors call these verbs and never see SQL.
"""

from __future__ import annotations

from sqlalchemy import Engine

from .audit import AuditStore
from .base import utcnow
from .capabilities import Capabilities
from .claimed import ClaimedStore
from .engine import make_engine
from .failed import FailedFilter, FailedStore
from .jobs import JobsStore
from .migrations import migrate, pending_versions
from .pauses import PausesStore
from .processes import ProcessesStore, ProcessRow
from .reads import Reads
from .ready import ReadyStore
from .records import ClaimedJob, JobRow, NewJob, Outcome, QueueSelector
from .recurring import RecurringStore, RecurringTaskRow
from .scheduled import ScheduledStore
from .semaphores import SemaphoresStore
from .stats import StatsStore


class Store(
    JobsStore,
    ReadyStore,
    ClaimedStore,
    ScheduledStore,
    SemaphoresStore,
    RecurringStore,
    FailedStore,
    PausesStore,
    ProcessesStore,
    StatsStore,
    Reads,
    AuditStore,
):
    def __init__(self, engine: Engine, *, preserve_finished_jobs: bool = True) -> None:
        super().__init__(engine)
        self.preserve_finished_jobs = preserve_finished_jobs

    @classmethod
    def from_url(cls, url: str, *, preserve_finished_jobs: bool = True) -> Store:
        return cls(make_engine(url), preserve_finished_jobs=preserve_finished_jobs)

    def migrate(self) -> list[str]:
        return migrate(self.engine)

    def pending_migrations(self) -> list[str]:
        return pending_versions(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = [
    "Capabilities",
    "ClaimedJob",
    "FailedFilter",
    "JobRow",
    "NewJob",
    "Outcome",
    "ProcessRow",
    "QueueSelector",
    "RecurringTaskRow",
    "Store",
    "utcnow",
]
