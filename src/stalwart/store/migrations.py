"""Versioned migrations, applied by `stalwart migrate` (safe twice, safe concurrently).

A fresh database gets the declared schema (``schema.metadata``) in one step and is
stamped with every known version. An existing database gets the migrations it has not
had, in order. Each later change to ``schema.py`` ships with a migration in
``MIGRATIONS`` that takes a database at the previous version to the new one; the
conformance suite checks both paths end in the same schema.

Concurrent runs are serialized by a database lock (on PostgreSQL a transaction-level
advisory lock taken by each step's transaction, which needs no session and so works
through PgBouncer in transaction mode; GET_LOCK on MySQL/MariaDB; the write lock on
SQLite) and each step re-reads the applied versions under the lock, so the loser of a
race finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from sqlalchemy import Column, Connection, Engine, MetaData, String, Table, insert, select, text
from sqlalchemy.schema import CreateColumn

from . import schema as s
from .base import utcnow
from .capabilities import Capabilities
from .notify import CHANNEL
from .schema import Timestamp, metadata


@dataclass(frozen=True)
class Migration:
    version: str
    description: str
    upgrade: Callable[[Connection, Capabilities], None]


def _baseline(conn: Connection, caps: Capabilities) -> None:
    metadata.create_all(conn)
    _tune_queue_tables(conn, caps)


# The execution tables see a row inserted and deleted for every job: vacuum them after a
# fixed number of dead rows, not a fraction of their (small, changing) size, and without
# the cost-based pauses, so index scans of the claim do not wade through dead entries.
QUEUE_TABLE_AUTOVACUUM = {
    "autovacuum_vacuum_scale_factor": "0",
    "autovacuum_vacuum_threshold": "1000",
    "autovacuum_vacuum_insert_scale_factor": "0",
    "autovacuum_vacuum_insert_threshold": "10000",
    "autovacuum_analyze_scale_factor": "0",
    "autovacuum_analyze_threshold": "5000",
    "autovacuum_vacuum_cost_delay": "0",
}
QUEUE_TABLES: tuple[str, ...] = (
    "stalwart_ready_executions",
    "stalwart_claimed_executions",
    "stalwart_scheduled_executions",
    "stalwart_blocked_executions",
    "stalwart_semaphores",
    "stalwart_processes",
    "stalwart_suspect_executions",
    "stalwart_throttled_executions",
    "stalwart_rate_limits",
    "stalwart_cancellations",
    "stalwart_waiting_executions",
    "stalwart_batches",
)


def _tune_queue_tables(
    conn: Connection, caps: Capabilities, tables: tuple[str, ...] = QUEUE_TABLES
) -> None:
    if not caps.autovacuum:
        return
    params = ", ".join(f"{k} = {v}" for k, v in QUEUE_TABLE_AUTOVACUUM.items())
    for table in tables:
        conn.execute(text(f"ALTER TABLE {table} SET ({params})"))


def _audit_log(conn: Connection, caps: Capabilities) -> None:
    from .audit import audit_events

    audit_events.create(conn, checkfirst=True)


JOB_CONTROL_COLUMNS = ("timeout", "expires_at", "rate_limits", "interruptions", "history")
JOB_CONTROL_TABLES = (
    s.suspect_executions,
    s.throttled_executions,
    s.rate_limits,
    s.cancellations,
)


def _job_control(conn: Connection, caps: Capabilities) -> None:
    for name in JOB_CONTROL_COLUMNS:
        column = CreateColumn(s.jobs.c[name]).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {s.jobs.name} ADD COLUMN {column}"))
    for table in JOB_CONTROL_TABLES:
        table.create(conn, checkfirst=True)
    _tune_queue_tables(conn, caps, tuple(t.name for t in JOB_CONTROL_TABLES))


WORKFLOW_COLUMNS = ("batch_id", "has_dependents", "progress")
WORKFLOW_TABLES = (s.batches, s.job_dependencies, s.waiting_executions)


def _workflows(conn: Connection, caps: Capabilities) -> None:
    for name in WORKFLOW_COLUMNS:
        column = CreateColumn(s.jobs.c[name]).compile(dialect=conn.dialect)
        conn.execute(text(f"ALTER TABLE {s.jobs.name} ADD COLUMN {column}"))
    for index in s.jobs.indexes:
        if index.name == "ix_stalwart_jobs_batch":
            index.create(conn, checkfirst=True)
    for table in WORKFLOW_TABLES:
        table.create(conn, checkfirst=True)
    _tune_queue_tables(conn, caps, (s.waiting_executions.name, s.batches.name))


def _clock_offset(conn: Connection, caps: Capabilities) -> None:
    column = CreateColumn(s.processes.c.clock_offset).compile(dialect=conn.dialect)
    conn.execute(text(f"ALTER TABLE {s.processes.name} ADD COLUMN {column}"))


def _ready_notify(conn: Connection, caps: Capabilities) -> None:
    """Where the database notifies: every insert into ready notifies its queues (once
    per queue per statement; identical notifications of a transaction are folded into
    one), whichever path made the jobs ready — a hand-back, a retry from the dashboard,
    an unblocked job — so idle workers may poll seldom (`notify.py`)."""
    if not caps.notify:
        return
    conn.execute(
        text(
            "CREATE OR REPLACE FUNCTION stalwart_notify_ready() RETURNS trigger"
            " LANGUAGE plpgsql AS $$ BEGIN"
            f" PERFORM pg_notify('{CHANNEL}', q) FROM"
            " (SELECT DISTINCT queue_name AS q FROM stalwart_new_ready) AS queues;"
            " RETURN NULL; END $$"
        )
    )
    conn.execute(text(f"DROP TRIGGER IF EXISTS stalwart_ready_notify ON {s.ready_executions.name}"))
    conn.execute(
        text(
            f"CREATE TRIGGER stalwart_ready_notify AFTER INSERT ON {s.ready_executions.name}"
            " REFERENCING NEW TABLE AS stalwart_new_ready FOR EACH STATEMENT"
            " EXECUTE FUNCTION stalwart_notify_ready()"
        )
    )


def _partial_unique_key(conn: Connection, caps: Capabilities) -> None:
    """The unique-key constraint becomes a unique index of the keys that are set: jobs
    without one (nearly all) no longer each add an entry to it when enqueued or
    finished. Where a constraint cannot be dropped (SQLite, without rebuilding the jobs
    table) or an index cannot be partial (MySQL), the full one stays: same behaviour."""
    if not (caps.drop_constraint and caps.partial_indexes):
        return
    [index] = [i for i in s.jobs.indexes if i.name == "uq_stalwart_jobs_unique_key"]
    conn.execute(text(f"ALTER TABLE {s.jobs.name} DROP CONSTRAINT {index.name}"))
    index.create(conn)


# In order. A database created fresh is stamped with all of them.
MIGRATIONS: list[Migration] = [
    Migration("0001", "eleven stalwart_ tables and their indexes", _baseline),
    Migration("0002", "the dashboard's audit log, stalwart_audit_events", _audit_log),
    Migration(
        "0003",
        "job control: timeouts, expiry, rate limits, interruptions, history; suspect, "
        "throttled, rate-limit and cancellation tables",
        _job_control,
    ),
    Migration(
        "0004",
        "workflows: batches, job dependencies, waiting executions; batch_id, "
        "has_dependents and progress of jobs",
        _workflows,
    ),
    Migration(
        "0005",
        "stalwart_processes.clock_offset: each host's clock against the database's",
        _clock_offset,
    ),
    Migration(
        "0006",
        "PostgreSQL: a trigger notifies idle workers of every insert into ready",
        _ready_notify,
    ),
    Migration(
        "0007",
        "PostgreSQL: the unique-key constraint becomes a partial unique index (keys set)",
        _partial_unique_key,
    ),
]

_versions_meta = MetaData()
schema_migrations = Table(
    "stalwart_schema_migrations",
    _versions_meta,
    Column("version", String(32), primary_key=True),
    Column("description", String(255), nullable=False),
    Column("applied_at", Timestamp, nullable=False),
)

_LOCK_KEY = 0x5374616C  # "Stal"
_LOCK_NAME = "stalwart_migrate"


def migrate(engine: Engine, caps: Capabilities) -> list[str]:
    """Bring the schema up to date; return the versions applied by this call."""
    with engine.connect() as conn, _migration_lock(conn, caps):
        with conn.begin():
            _step_lock(conn, caps)
            _versions_meta.create_all(conn)
            if not _applied(conn):
                # Fresh database: the declared schema at once, stamped with every version.
                metadata.create_all(conn)
                _tune_queue_tables(conn, caps)
                _ready_notify(conn, caps)
                _stamp(conn, MIGRATIONS)
                return [m.version for m in MIGRATIONS]
        done = []
        for m in MIGRATIONS:
            with conn.begin():
                _step_lock(conn, caps)
                # Re-read under the lock: a concurrent run may have applied it.
                if m.version in _applied(conn):
                    continue
                m.upgrade(conn, caps)
                _stamp(conn, [m])
            done.append(m.version)
        return done


def _applied(conn: Connection) -> set[str]:
    return set(conn.execute(select(schema_migrations.c.version)).scalars())


def applied_versions(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, schema_migrations.name):
            return []
        return sorted(conn.execute(select(schema_migrations.c.version)).scalars())


def pending_versions(engine: Engine) -> list[str]:
    applied = set(applied_versions(engine))
    return [m.version for m in MIGRATIONS if m.version not in applied]


def _stamp(conn: Connection, migrations: list[Migration]) -> None:
    now = utcnow()
    conn.execute(
        insert(schema_migrations),
        [
            {"version": m.version, "description": m.description, "applied_at": now}
            for m in migrations
        ],
    )


def _step_lock(conn: Connection, caps: Capabilities) -> None:
    """PostgreSQL: the lock, for this step's transaction (released at its end)."""
    if caps.lock_style == "advisory_xact":
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})


@contextmanager
def _migration_lock(conn: Connection, caps: Capabilities) -> Iterator[None]:
    """MySQL/MariaDB: a session lock, held across the steps' transactions."""
    if caps.lock_style == "get_lock":
        got = conn.execute(text("SELECT GET_LOCK(:n, 600)"), {"n": _LOCK_NAME}).scalar()
        conn.commit()
        if got != 1:
            raise TimeoutError("another `stalwart migrate` held the migration lock for 600 s")
        try:
            yield
        finally:
            conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": _LOCK_NAME})
            conn.commit()
    else:
        # PostgreSQL: each step takes `_step_lock`. SQLite: every transaction of ours
        # begins IMMEDIATE (engine.py), so each step holds the write lock; the version
        # re-read under it makes racers no-ops.
        yield
