"""The store: the only place in Stalwart that holds SQL.

`open_store(url)` builds the store for a database once: the generic `Store` (one mixin
per table family, each verb a noun-verb method running in one short transaction), or
its subclass with that database's fast paths (`postgres.py`, `sqlite.py`). The verbs
the actors and the App use are declared in `protocol.py`; actors call them and never
see SQL.
"""

from __future__ import annotations

from .base import utcnow
from .capabilities import Capabilities
from .clock import DEFAULT_TOLERANCE, Clock
from .engine import make_engine
from .failed import FailedFilter
from .generic import Store
from .postgres import PostgresStore
from .processes import ProcessRow
from .protocol import Listener, StoreProtocol
from .records import ClaimedJob, JobRow, NewJob, Outcome, QueueSelector
from .recurring import RecurringTaskRow
from .sqlite import SqliteStore


def open_store(
    url: str,
    *,
    preserve_finished_jobs: bool = True,
    fast_paths: bool = True,
    probe: bool = False,
    transaction_pooling: bool = False,
    listen_url: str | None = None,
    migrate_url: str | None = None,
    clock_tolerance: float = DEFAULT_TOLERANCE,
) -> Store:
    """The store for ``url``: with the database's fast paths unless ``fast_paths`` is
    False (the conformance suite runs the generic verbs on PostgreSQL that way);
    ``probe``: for health checks and scrapes (a small pool of checked connections, short
    timeouts: `make_engine`). ``transaction_pooling``, ``listen_url``, ``migrate_url``:
    for a ``url`` behind PgBouncer in transaction mode (README, "Behind PgBouncer");
    `Config.store_options()` gives all three."""
    engine = make_engine(url, probe=probe, transaction_pooling=transaction_pooling)
    caps = Capabilities.of(engine.dialect)
    cls: type[Store] = Store
    if caps.single_writer:
        cls = SqliteStore
    elif fast_paths and caps.writable_cte and caps.copy_from:
        cls = PostgresStore
    store = cls(
        engine,
        preserve_finished_jobs=preserve_finished_jobs,
        transaction_pooling=transaction_pooling,
        listen_url=listen_url,
        migrate_url=migrate_url,
    )
    store.clock.tolerance = clock_tolerance
    return store


__all__ = [
    "Capabilities",
    "ClaimedJob",
    "Clock",
    "FailedFilter",
    "JobRow",
    "Listener",
    "NewJob",
    "Outcome",
    "ProcessRow",
    "QueueSelector",
    "RecurringTaskRow",
    "Store",
    "StoreProtocol",
    "open_store",
    "utcnow",
]
