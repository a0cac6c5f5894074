"""The generic store: every verb in one portable implementation, one mixin per table
family (`jobs.py`, `ready.py`, `claimed.py`, ...). `postgres.py` and `sqlite.py`
subclass it where a database does the same work faster."""

from __future__ import annotations

from sqlalchemy import Engine

from .audit import AuditStore
from .batches import BatchesStore
from .cancellations import CancellationsStore
from .capabilities import Capabilities
from .claimed import ClaimedStore
from .engine import make_engine
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
    def __init__(
        self,
        engine: Engine,
        *,
        preserve_finished_jobs: bool = True,
        transaction_pooling: bool = False,
        listen_url: str | None = None,
        migrate_url: str | None = None,
    ) -> None:
        super().__init__(engine)
        self.preserve_finished_jobs = preserve_finished_jobs
        # `engine` goes through a pooler in transaction mode: nothing needing a session
        # runs on it (LISTEN goes to ``listen_url``, or workers poll).
        self.transaction_pooling = transaction_pooling
        self.listen_url = listen_url
        self.migrate_url = migrate_url

    def migrate(self) -> list[str]:
        """Migrations take a lock per transaction, so they work through a transaction
        pooler too; ``migrate_url``, if given, runs them on a direct connection."""
        if self.migrate_url is None:
            return migrate(self.engine, self.caps)
        engine = make_engine(self.migrate_url)
        try:
            return migrate(engine, Capabilities.of(engine.dialect))
        finally:
            engine.dispose()

    def pending_migrations(self) -> list[str]:
        return pending_versions(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()
