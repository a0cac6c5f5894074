"""The generic store: every verb in one portable implementation, one mixin per table
family (`jobs.py`, `ready.py`, `claimed.py`, ...). `postgres.py` and `sqlite.py`
subclass it where a database does the same work faster."""

from __future__ import annotations

from sqlalchemy import Engine

from .audit import AuditStore
from .batches import BatchesStore
from .cancellations import CancellationsStore
from .claimed import ClaimedStore
from .failed import FailedStore
from .migrations import migrate, pending_versions
from .pauses import PausesStore
from .processes import ProcessesStore
from .rates import RatesStore
from .reads import Reads
from .ready import ReadyStore
from .recurring import RecurringStore
from .scheduled import ScheduledStore
from .semaphores import SemaphoresStore
from .suspects import SuspectsStore
from .upkeep import UpkeepStore


class Store(
    RecurringStore,  # a JobsStore too: it enqueues the runs
    ReadyStore,
    ClaimedStore,
    ScheduledStore,
    SemaphoresStore,
    SuspectsStore,
    RatesStore,
    CancellationsStore,
    FailedStore,
    PausesStore,
    ProcessesStore,
    UpkeepStore,
    Reads,
    AuditStore,
    BatchesStore,
):
    def __init__(self, engine: Engine, *, preserve_finished_jobs: bool = True) -> None:
        super().__init__(engine)
        self.preserve_finished_jobs = preserve_finished_jobs

    def migrate(self) -> list[str]:
        return migrate(self.engine, self.caps)

    def pending_migrations(self) -> list[str]:
        return pending_versions(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
