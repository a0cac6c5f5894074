"""The declared schema: the ``stalwart_`` tables, one per concept.

The job lives in ``stalwart_jobs``; each execution state has a small table of its own
so the hot tables (ready, claimed) stay small however many finished jobs are kept.
Indexes are shaped after the queries that poll them (see the comments).

There are no foreign keys: the store deletes execution rows together with their job.
On PostgreSQL the per-row foreign-key trigger tripled the cost of inserting ready rows
(100,000 rows: 1.26 s with the key, 0.41 s without).
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects import mysql

metadata = MetaData()

# Microsecond timestamps everywhere (MySQL's DATETIME defaults to whole seconds).
Timestamp = DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
# SQLite only auto-increments an INTEGER PRIMARY KEY (the rowid alias).
JobId = BigInteger().with_variant(Integer(), "sqlite")
# MEDIUMTEXT on MySQL: TEXT caps at 64 KiB, too small for arguments and tracebacks.
LongText = Text().with_variant(mysql.MEDIUMTEXT(), "mysql", "mariadb")


jobs = Table(
    "stalwart_jobs",
    metadata,
    Column("id", JobId, primary_key=True, autoincrement=True),
    Column("task_name", String(255), nullable=False),
    Column("queue_name", String(100), nullable=False),
    Column("priority", SmallInteger, nullable=False, default=0),
    Column("args", LongText, nullable=False),
    Column("kwargs", LongText, nullable=False),
    Column("context", LongText, nullable=True),
    # JSON list of {"key", "to", "duration", "on_conflict"}: the semaphores this job
    # must hold to run (concurrency limits).
    Column("concurrency_limits", LongText, nullable=True),
    # Set while the job is not finished: a unique index makes a second one fail.
    Column("unique_key", String(255), nullable=True),
    Column("scheduled_at", Timestamp, nullable=False),
    Column("enqueued_at", Timestamp, nullable=False),
    Column("started_at", Timestamp, nullable=True),
    Column("finished_at", Timestamp, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("crashes", Integer, nullable=False, default=0),
    Column("errors", LongText, nullable=True),
    Column("result", LongText, nullable=True),
    # Job control (migration 0003). Seconds an attempt may run; past it, JobTimeout.
    Column("timeout", Float, nullable=True),
    # Not started by then: the job fails with Expired instead of running late.
    Column("expires_at", Timestamp, nullable=True),
    # JSON list of {"key", "limit", "per"}: the start rates this job must respect.
    Column("rate_limits", LongText, nullable=True),
    # How often a shutdown handed the job back while it ran.
    Column("interruptions", Integer, nullable=False, default=0, server_default=text("0")),
    # JSON list of {"at", "event", "detail"}: what happened to the job besides its
    # attempts (handed back, suspected in a crash, run alone, cancel asked).
    Column("history", LongText, nullable=True),
    # Workflows (migration 0004). The batch the job belongs to; set at enqueue, never
    # changed, so a worker knows at claim time whether completion has bookkeeping to do.
    Column("batch_id", BigInteger, nullable=True),
    # Set (under the job's row lock) once another job depends on it.
    Column("has_dependents", Boolean, nullable=True),
    # JSON {"done", "total", "message", "at"}: the last progress the job reported.
    Column("progress", LongText, nullable=True),
    # Every index here is paid on each enqueue, so the jobs table has few, partial where
    # the database allows. Unique keys (migration 0007): jobs without one (NULL) skip it.
    Index(
        "uq_stalwart_jobs_unique_key",
        "unique_key",
        unique=True,
        postgresql_where=text("unique_key IS NOT NULL"),
        sqlite_where=text("unique_key IS NOT NULL"),
    ),
    # Clearing finished jobs walks this index in batches; unfinished jobs (the ones
    # being enqueued) skip it.
    Index(
        "ix_stalwart_jobs_finished_at",
        "finished_at",
        postgresql_where=text("finished_at IS NOT NULL"),
        sqlite_where=text("finished_at IS NOT NULL"),
    ),
)

# The batch page lists a batch's jobs; partial where supported, so jobs of no batch
# (NULL) cost the index nothing on enqueue.
Index(
    "ix_stalwart_jobs_batch",
    jobs.c.batch_id,
    jobs.c.id,
    postgresql_where=text("batch_id IS NOT NULL"),
    sqlite_where=text("batch_id IS NOT NULL"),
)

ready_executions = Table(
    "stalwart_ready_executions",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("queue_name", String(100), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)
# The claim reads `WHERE queue_name = ? ORDER BY priority DESC, job_id` (one queue) or
# `ORDER BY priority DESC, job_id` (all queues): both are walks of these indexes, with no
# sort step (the DESC column makes it so on MySQL/MariaDB too).
Index(
    "ix_stalwart_ready_queue_priority_job",
    ready_executions.c.queue_name,
    ready_executions.c.priority.desc(),
    ready_executions.c.job_id,
)
Index(
    "ix_stalwart_ready_priority_job",
    ready_executions.c.priority.desc(),
    ready_executions.c.job_id,
)

scheduled_executions = Table(
    "stalwart_scheduled_executions",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("queue_name", String(100), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("scheduled_at", Timestamp, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)
# The dispatcher reads `WHERE scheduled_at <= now ORDER BY scheduled_at, priority DESC, job_id`.
Index(
    "ix_stalwart_scheduled_dispatch",
    scheduled_executions.c.scheduled_at,
    scheduled_executions.c.priority.desc(),
    scheduled_executions.c.job_id,
)

claimed_executions = Table(
    "stalwart_claimed_executions",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("process_id", BigInteger, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_stalwart_claimed_process", "process_id", "job_id"),
)

blocked_executions = Table(
    "stalwart_blocked_executions",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("queue_name", String(100), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("concurrency_key", String(255), nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_stalwart_blocked_expires", "expires_at", "concurrency_key"),
)
# Unblocking takes the next job of a key in priority, then FIFO order.
Index(
    "ix_stalwart_blocked_key_priority_job",
    blocked_executions.c.concurrency_key,
    blocked_executions.c.priority.desc(),
    blocked_executions.c.job_id,
)

failed_executions = Table(
    "stalwart_failed_executions",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("queue_name", String(100), nullable=False),
    Column("error_class", String(255), nullable=False),
    Column("error", LongText, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_stalwart_failed_queue", "queue_name", "job_id"),
    Index("ix_stalwart_failed_error_class", "error_class", "job_id"),
)

# Jobs that were running beside a worker that crashed: suspects, each to run alone (a
# process of its own) before it can be blamed. Ordered like ready.
suspect_executions = Table(
    "stalwart_suspect_executions",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("queue_name", String(100), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)
Index(
    "ix_stalwart_suspect_queue_priority_job",
    suspect_executions.c.queue_name,
    suspect_executions.c.priority.desc(),
    suspect_executions.c.job_id,
)

# Jobs over a start rate, in line per rate key until a start frees at ``due_at``.
throttled_executions = Table(
    "stalwart_throttled_executions",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("queue_name", String(100), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("rate_key", String(255), nullable=False),
    Column("due_at", Timestamp, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_stalwart_throttled_due", "due_at", "rate_key"),
)
# Releasing a line takes its jobs in priority, then FIFO order.
Index(
    "ix_stalwart_throttled_key_priority_job",
    throttled_executions.c.rate_key,
    throttled_executions.c.priority.desc(),
    throttled_executions.c.job_id,
)

# One row per rate key: the recent start times (JSON list of epoch seconds), the row
# lock that orders the starts of that key (and no other).
rate_limits = Table(
    "stalwart_rate_limits",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("starts", LongText, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

# Running jobs asked to stop: the worker holding one sees it and cancels it.
cancellations = Table(
    "stalwart_cancellations",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("created_at", Timestamp, nullable=False),
)

pauses = Table(
    "stalwart_pauses",
    metadata,
    Column("queue_name", String(100), primary_key=True),
    Column("created_at", Timestamp, nullable=False),
)

processes = Table(
    "stalwart_processes",
    metadata,
    Column("id", JobId, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),
    Column("name", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("supervisor_id", BigInteger, nullable=True),
    Column("metadata", LongText, nullable=True),
    Column("last_heartbeat_at", Timestamp, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    # Seconds the host's clock is behind the database's (negative: ahead), last measured.
    Column("clock_offset", Float, nullable=True),
    UniqueConstraint("name", name="uq_stalwart_processes_name"),
    Index("ix_stalwart_processes_heartbeat", "last_heartbeat_at"),
    Index("ix_stalwart_processes_supervisor", "supervisor_id"),
)

semaphores = Table(
    "stalwart_semaphores",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("value", Integer, nullable=False),
    Column("expires_at", Timestamp, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_stalwart_semaphores_expires", "expires_at"),
)

recurring_tasks = Table(
    "stalwart_recurring_tasks",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("schedule", String(255), nullable=False),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("task_name", String(255), nullable=True),
    Column("command", LongText, nullable=True),
    Column("args", LongText, nullable=False),
    Column("kwargs", LongText, nullable=False),
    Column("queue_name", String(100), nullable=True),
    Column("priority", SmallInteger, nullable=True),
    Column("missed", String(16), nullable=False, default="skip"),
    Column("missed_window", Integer, nullable=False, default=86400),
    Column("description", Text, nullable=True),
    Column("static", Boolean, nullable=False, default=True),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
)

recurring_executions = Table(
    "stalwart_recurring_executions",
    metadata,
    Column("id", JobId, primary_key=True, autoincrement=True),
    Column("task_key", String(255), nullable=False),
    Column("run_at", Timestamp, nullable=False),
    Column("job_id", BigInteger, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    # Many schedulers may race to enqueue the same run; this makes only one win.
    UniqueConstraint("task_key", "run_at", name="uq_stalwart_recurring_run"),
)

# A batch: its counters live on its own row, so completions of different batches never
# wait on each other. ``pending`` counts jobs not ended yet; the batch is finished when
# it is closed (the ``with`` block is over) and ``pending`` is 0 — the completion that
# sets ``finished_at`` (a conditional UPDATE) is the one that enqueues the callbacks.
batches = Table(
    "stalwart_batches",
    metadata,
    Column("id", JobId, primary_key=True, autoincrement=True),
    Column("description", String(255), nullable=True),
    Column("total", Integer, nullable=False, default=0),
    Column("pending", Integer, nullable=False, default=0),
    Column("succeeded", Integer, nullable=False, default=0),
    Column("failed", Integer, nullable=False, default=0),
    # JSON list of {"on": "success"|"finish"|"failure", "job": {...}, "job_id": id}.
    Column("callbacks", LongText, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    Column("closed_at", Timestamp, nullable=True),
    Column("finished_at", Timestamp, nullable=True),
    Index("ix_stalwart_batches_created", "created_at"),
)

# Job ``job_id`` runs after ``depends_on`` succeeded; ``pass_as``: the keyword argument
# that receives the dependency's return value (chains: "previous").
job_dependencies = Table(
    "stalwart_job_dependencies",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("depends_on", JobId, primary_key=True, autoincrement=False),
    Column("pass_as", String(100), nullable=True),
    Index("ix_stalwart_job_dependencies_on", "depends_on", "job_id"),
)

# Jobs waiting for dependencies (status WAITING): ``remaining`` of them not ended yet.
# ``recheck``: a dependency was running (claimed before it had dependents) when this job
# was enqueued; the dispatcher settles such rows once their dependencies have ended.
waiting_executions = Table(
    "stalwart_waiting_executions",
    metadata,
    Column("job_id", JobId, primary_key=True, autoincrement=False),
    Column("queue_name", String(100), nullable=False),
    Column("priority", SmallInteger, nullable=False),
    Column("remaining", Integer, nullable=False),
    # "fail" (DependencyFailed) or "run": what a failed dependency does to this job.
    Column("on_failure", String(8), nullable=False),
    Column("recheck", Boolean, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Index("ix_stalwart_waiting_recheck", "recheck", "job_id"),
)

ALL_TABLES = [t.name for t in metadata.sorted_tables]
