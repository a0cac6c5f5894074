"""The seam between Stalwart and its database: every verb the actors (worker,
dispatcher, scheduler, supervisor) and the App call, in one place.

`Store` (generic), `PostgresStore` and `SqliteStore` implement it; the conformance
suite in `tests/store/` runs every verb against each of them. Each verb is one short
transaction (or one statement) and says in its name which table family it works on.
The dashboard's and the CLI's reads are in the read model, not here: nothing an actor
does depends on them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection

from .batches import BatchRow, Link
from .claimed import Recovery
from .clock import Clock
from .failed import FailedFilter
from .processes import ProcessRow
from .rates import RateDenied
from .records import ClaimedJob, JobRow, NewJob, Outcome, QueueSelector
from .recurring import RecurringTaskRow


class Listener(Protocol):
    """A background wake-up source: calls back when jobs become ready."""

    # Whether it is listening now (while it is, pollers may wait long between polls).
    connected: bool

    def start(self) -> None: ...


class StoreProtocol(Protocol):
    # The database's time, read off this host's clock plus a measured offset.
    clock: Clock

    # ---- the clock ----
    def clock_read(self) -> datetime:
        """The database's own time now, naive UTC (SQLite: this host's)."""
        ...

    # ---- schema ----
    def migrate(self) -> list[str]: ...
    def pending_migrations(self) -> list[str]: ...

    # ---- jobs: enqueue, read, cancel, clear ----
    def jobs_enqueue(
        self,
        jobs: Sequence[NewJob],
        conn: Connection | None = None,
        now: datetime | None = None,
    ) -> list[int]:
        """Insert jobs with their ready (or blocked) or scheduled row; ids in order.
        With ``conn``, in the caller's transaction; ``now`` is their enqueue time."""
        ...

    def job_get(self, job_id: int) -> JobRow:
        """The job and its status; JobNotFound if there is none."""
        ...

    def jobs_get(self, job_ids: Sequence[int]) -> list[JobRow]: ...

    def job_cancel(self, job_id: int) -> bool:
        """Take a waiting job out of line (FAILED, Cancelled); False if not waiting."""
        ...

    def jobs_clear_finished(self, finished_before: datetime, batch_size: int = 1000) -> int: ...

    # ---- ready → claimed → finished / failed / back ----
    def ready_claim(
        self, process_id: int | None, queues: QueueSelector, limit: int
    ) -> list[ClaimedJob]:
        """Move up to ``limit`` ready jobs to claimed for ``process_id``, in claim order."""
        ...

    def ready_listener(
        self, on_ready: Callable[[str], None], stopping: threading.Event
    ) -> Listener | None:
        """Where the database can notify: a listener calling ``on_ready(queue)``."""
        ...

    def claimed_complete(self, process_id: int | None, outcomes: Sequence[Outcome]) -> list[int]:
        """Record finished attempts of jobs ``process_id`` still holds; their ids."""
        ...

    def claimed_release(
        self,
        process_id: int | None,
        job_ids: Sequence[int] | None = None,
        *,
        interrupted: Sequence[int] = (),
        why: str = "its worker stopped",
    ) -> int:
        """Hand claimed jobs back to ready; those ``interrupted`` while running keep a
        record of it."""
        ...

    def claimed_recover(
        self,
        process_id: int,
        error: dict[str, Any],
        should_retry: Callable[[str, int], bool],
        running: Sequence[int] | None = None,
    ) -> Recovery:
        """The jobs of a dead process: handed back, blamed (ran alone), or suspects;
        deregister it."""
        ...

    # ---- crash suspects, cancellations, start rates ----
    def suspect_claim(self, process_id: int | None, queues: QueueSelector) -> ClaimedJob | None:
        """Claim one job that must run alone (isolation workers only)."""
        ...

    def suspects_any(self, queues: QueueSelector) -> bool: ...

    def cancellations_among(self, job_ids: Sequence[int]) -> set[int]:
        """Which of a worker's jobs were asked to stop."""
        ...

    def cancellations_prune(self) -> int: ...

    def rate_acquire(
        self, job_id: int, priority: int, rates_text: str, at: float
    ) -> RateDenied | None:
        """A start of every rate of the job at ``at``, or the line it must join."""
        ...

    def throttled_release(self, batch_size: int = 100) -> int: ...

    def claimed_by(self, process_id: int | None) -> list[int]: ...

    # ---- scheduled, concurrency limits, failed, pauses ----
    def scheduled_dispatch_due(self, batch_size: int, now: datetime | None = None) -> int: ...
    def semaphores_maintain(self, batch_size: int = 500) -> tuple[int, int]: ...
    def failed_retry(self, which: FailedFilter, rerun_batch_callbacks: bool = False) -> int: ...
    def failed_discard(self, which: FailedFilter) -> int: ...
    def queue_pause(self, queue_name: str) -> bool: ...
    def queue_resume(self, queue_name: str) -> bool: ...
    def queues_paused(self) -> set[str]: ...

    # ---- workflows: batches, dependencies, progress ----
    def batch_create(
        self,
        description: str | None,
        callbacks: list[dict[str, Any]],
        conn: Connection | None = None,
    ) -> int: ...

    def batch_close(self, batch_id: int, conn: Connection | None = None) -> None:
        """Closed and nothing pending: finished, its callbacks enqueued (exactly once)."""
        ...

    def batch_get(self, batch_id: int) -> BatchRow: ...
    def batches_list(self, limit: int = 50, offset: int = 0) -> list[BatchRow]: ...
    def batches_count(self) -> int: ...
    def job_dependency_results(self, job_id: int) -> dict[int, Any]: ...
    def job_links(self, job_id: int) -> tuple[list[Link], list[Link]]: ...
    def job_progress_set(self, job_id: int, progress: str) -> None: ...

    def waiting_recheck(self, batch_size: int = 100) -> int:
        """Waiting jobs enqueued while a dependency ran: let go once it has ended."""
        ...

    # ---- recurring tasks ----
    def recurring_upsert(self, task: RecurringTaskRow) -> None: ...
    def recurring_sync_static(self, tasks: Sequence[RecurringTaskRow]) -> None: ...
    def recurring_remove(self, key: str) -> bool: ...
    def recurring_list(self) -> list[RecurringTaskRow]: ...
    def recurring_last_runs(self) -> dict[str, datetime]: ...

    def recurring_enqueue(self, key: str, run_at: datetime, job: NewJob) -> int | None:
        """Enqueue the run of ``key`` at ``run_at`` unless any scheduler already did."""
        ...

    # ---- processes ----
    def process_register(
        self,
        *,
        kind: str,
        name: str,
        pid: int,
        hostname: str,
        supervisor_id: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int: ...

    def process_heartbeat(self, process_id: int) -> bool:
        """False if the row is gone: the process was pruned as dead."""
        ...

    def process_deregister(self, process_id: int) -> None: ...
    def process_by_name(self, name: str) -> ProcessRow | None: ...
    def processes_list(self) -> list[ProcessRow]: ...
    def processes_stale(self, alive_threshold: timedelta) -> list[ProcessRow]: ...

    # ---- upkeep and draining ----
    def queue_tables_vacuum(self, min_dead: int = 10_000) -> list[str]: ...
    def jobs_any_pending(self) -> bool: ...

    def jobs_any_due(self, within: timedelta | None = timedelta(0)) -> bool:
        """Anything ready, running, blocked, or scheduled to be due within ``within``."""
        ...

    def scheduled_summary(self) -> tuple[int, datetime | None]: ...
    def jobs_pending_count(self, due_only: bool = False) -> int: ...
    def tables_reset(self) -> None: ...
