"""The store conformance suite: every verb of `StoreProtocol`, run directly against each
implementation — SQLite, PostgreSQL with its fast paths, PostgreSQL with the generic
verbs forced, and MariaDB — so that every implementation is held to one behaviour."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stalwart.store import NewJob, Outcome, QueueSelector, Store, open_store, utcnow
from stalwart.store.postgres import PostgresStore
from stalwart.store.sqlite import SqliteStore

from .. import bouncer
from ..conftest import SERVER_URLS, _migrated, database_url, drop_all

# (backend, fast paths on, the class the store must be)
IMPLEMENTATIONS = {
    "sqlite": ("sqlite", True, SqliteStore),
    "postgresql": ("postgresql", True, PostgresStore),
    "postgresql-generic": ("postgresql", False, Store),
    "mariadb": ("mariadb", True, Store),
    # The test PostgreSQL through a private PgBouncer in transaction pooling mode.
    "postgresql-pgbouncer": ("postgresql", True, PostgresStore),
}


@pytest.fixture(scope="session")
def bouncer_url() -> Iterator[str]:
    why = bouncer.why_unavailable()
    if why is not None:
        print(f"\n*** SKIPPED: no PgBouncer here: {why} ***")
        pytest.skip(f"no PgBouncer here: {why}")
    with bouncer.pgbouncer(SERVER_URLS["postgresql"]) as running:
        yield running.url


@pytest.fixture(params=list(IMPLEMENTATIONS))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    backend, fast, cls = IMPLEMENTATIONS[request.param]
    if request.param == "postgresql-pgbouncer":
        url = request.getfixturevalue("bouncer_url")
        s = open_store(url, transaction_pooling=True)
    else:
        url = database_url(backend, tmp_path)
        s = open_store(url, fast_paths=fast)
    assert type(s) is cls, f"{request.param} built a {type(s).__name__}"
    if url not in _migrated:
        drop_all(s)
        s.migrate()
        _migrated.add(url)
    s.tables_reset()
    yield s
    s.dispose()


def job(
    task: str = "t.task",
    queue: str = "default",
    priority: int = 0,
    *,
    args: list[Any] | None = None,
    at: datetime | None = None,
    limits: list[dict[str, Any]] | None = None,
    unique_key: str | None = None,
    unique_conflict: str = "raise",
) -> NewJob:
    return NewJob(
        task_name=task,
        queue_name=queue,
        priority=priority,
        args=json.dumps(args or []),
        kwargs="{}",
        scheduled_at=at or utcnow(),
        concurrency_limits=json.dumps(limits) if limits else None,
        unique_key=unique_key,
        unique_conflict=unique_conflict,
    )


def limit(key: str, to: int = 1, duration: float = 60.0, **extra: Any) -> dict[str, Any]:
    return {"key": key, "to": to, "duration": duration, "on_conflict": "block", **extra}


def claim_all(
    store: Store, process_id: int | None = None, patterns: tuple[str, ...] = ("*",)
) -> list[int]:
    return [c.id for c in store.ready_claim(process_id, QueueSelector(patterns), 1000)]


def success(job_id: int, result: str | None = None, limits: str | None = None) -> Outcome:
    now = time.time()
    return Outcome(job_id, now - 0.01, now, "success", result=result, concurrency_limits=limits)


def failure(
    job_id: int,
    retry_in: float | None = None,
    *,
    kind: str = "failure",
    counts_attempt: bool = True,
) -> Outcome:
    now = time.time()
    error = {"class": "ValueError", "message": "boom", "traceback": "", "at": utcnow().isoformat()}
    return Outcome(
        job_id,
        now - 0.01,
        now,
        kind,
        error=None if kind == "snooze" else error,
        retry_at=None if retry_in is None else utcnow() + timedelta(seconds=retry_in),
        counts_attempt=counts_attempt,
    )


def register(store: Store, name: str = "w1", kind: str = "worker") -> int:
    return store.process_register(kind=kind, name=name, pid=1, hostname="test")
