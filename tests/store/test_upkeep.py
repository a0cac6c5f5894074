"""Draining checks, vacuum, reset."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from stalwart.store import QueueSelector, Store, utcnow
from stalwart.store.postgres import PostgresStore

from ..helpers import count
from .conftest import claim_all, job, limit, register, success


def test_pending_counts_every_unfinished_job_once(store: Store) -> None:
    assert not store.jobs_any_pending() and store.jobs_pending_count() == 0
    ready, running = store.jobs_enqueue([job(priority=1), job()])
    store.jobs_enqueue([job(at=utcnow() + timedelta(hours=1))])
    store.jobs_enqueue([job(limits=[limit("p")]), job(limits=[limit("p")])])  # one blocked
    pid = register(store)
    store.ready_claim(pid, QueueSelector(), 1)
    assert store.jobs_any_pending()
    assert store.jobs_pending_count() == 5
    assert store.jobs_pending_count(due_only=True) == 4
    claim_all(store, pid)
    store.claimed_complete(pid, [success(i) for i in store.claimed_by(pid)])
    assert store.jobs_pending_count() == 2  # the scheduled and the blocked one
    assert ready != running


def test_vacuum_only_where_the_database_has_it_and_past_the_threshold(store: Store) -> None:
    ids = store.jobs_enqueue([job() for _ in range(300)])
    pid = register(store)
    claim_all(store, pid)
    store.claimed_complete(pid, [success(i) for i in ids])
    if not isinstance(store, PostgresStore):
        assert store.queue_tables_vacuum(min_dead=0) == []
        return
    with store.engine.connect() as conn:  # let the statistics see the dead rows
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
    assert store.queue_tables_vacuum(min_dead=10_000_000) == []
    vacuumed = store.queue_tables_vacuum(min_dead=0)
    assert set(vacuumed) & {"stalwart_ready_executions", "stalwart_claimed_executions"}


def test_reset_empties_every_table(store: Store) -> None:
    store.jobs_enqueue([job() for _ in range(3)])
    register(store)
    store.queue_pause("q")
    store.tables_reset()
    for table in ("jobs", "ready_executions", "processes", "pauses"):
        assert count(store, table) == 0
