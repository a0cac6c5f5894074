"""What many tests need: waiting for a condition, actors run in threads, and direct
looks into the tables (tests may read SQL; Stalwart's own code keeps it in store/)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import func, select, update

from stalwart.store import Store, schema, utcnow


class Runnable(Protocol):
    name: str

    def run(self) -> None: ...
    def stop(self) -> None: ...


def wait_for(
    predicate: Callable[[], object], timeout: float = 30.0, what: str = "the condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


@contextmanager
def running(*actors: Runnable) -> Iterator[None]:
    """Run actors (workers, dispatchers, schedulers) in threads; stop and join them."""
    threads = [threading.Thread(target=a.run, name=a.name, daemon=True) for a in actors]
    for t in threads:
        t.start()
    try:
        yield
    finally:
        for a in actors:
            a.stop()
        for t in threads:
            t.join(30)
            assert not t.is_alive(), f"{t.name} did not stop"


# ---- looks into the tables ----


def count(store: Store, table: str, **where: Any) -> int:
    """Rows of ``stalwart_<table>`` whose columns equal the given values."""
    t = schema.metadata.tables[f"stalwart_{table}"]
    q = select(func.count()).select_from(t)
    for column, value in where.items():
        q = q.where(t.c[column] == value)
    with store.engine.connect() as conn:
        return int(conn.execute(q).scalar_one())


def semaphore(store: Store, key: str) -> tuple[int, datetime] | None:
    """(free slots, expiry) of a concurrency key, or None if it has no row."""
    sem = schema.semaphores
    with store.engine.connect() as conn:
        row = conn.execute(select(sem.c.value, sem.c.expires_at).where(sem.c.key == key)).first()
    return None if row is None else (int(row[0]), row[1])


def recurring_runs(store: Store, key: str) -> list[tuple[datetime, int | None]]:
    """Every run of a recurring task: (run time, job id), newest first."""
    rx = schema.recurring_executions
    q = select(rx.c.run_at, rx.c.job_id).where(rx.c.task_key == key).order_by(rx.c.run_at.desc())
    with store.engine.connect() as conn:
        return [(r[0], r[1]) for r in conn.execute(q).all()]


def backdate_heartbeat(store: Store, process_id: int, by: timedelta) -> None:
    """Move a process's heartbeat into the past (a dead-host drill)."""
    pr = schema.processes
    with store.engine.begin() as conn:
        conn.execute(
            update(pr).where(pr.c.id == process_id).values(last_heartbeat_at=utcnow() - by)
        )
