"""rate_acquire and throttled_release: start rates across workers."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from sqlalchemy import text

from stalwart.store import Outcome, Store, utcnow

from .conftest import claim_all, job, register

RATE = [{"key": "acct/1", "limit": 2, "per": 1.0}]


def rated(store: Store, n: int, rates: list[dict[str, object]] = RATE) -> list[int]:
    jobs = [job() for _ in range(n)]
    for j in jobs:
        j.rate_limits = json.dumps(rates)
    return store.jobs_enqueue(jobs)


def test_at_most_limit_starts_in_any_window(store: Store) -> None:
    a, b, c = rated(store, 3)
    now = time.time()
    assert store.rate_acquire(a, 0, json.dumps(RATE), now) is None
    assert store.rate_acquire(b, 0, json.dumps(RATE), now + 0.2) is None
    denied = store.rate_acquire(c, 0, json.dumps(RATE), now + 0.5)
    assert denied is not None and denied.key == "acct/1"
    # A start frees when the first leaves the window: now + 1 s.
    free = (denied.due_at - utcnow()).total_seconds()
    assert 0.2 < free < 1.2
    assert store.rate_acquire(c, 0, json.dumps(RATE), now + 1.01) is None


def test_other_keys_and_several_rates(store: Store) -> None:
    both = [*RATE, {"key": "global/", "limit": 1, "per": 60.0}]
    a, b = rated(store, 2, both)
    now = time.time()
    assert store.rate_acquire(a, 0, json.dumps(both), now) is None
    denied = store.rate_acquire(b, 0, json.dumps(both), now)
    assert denied is not None and denied.key == "global/"  # the later of the two
    # A denied start took nothing: acct/1 still has one free.
    other = [{"key": "acct/2", "limit": 1, "per": 1.0}]
    [c] = rated(store, 1, other)
    assert store.rate_acquire(c, 0, json.dumps(other), now) is None
    [d] = rated(store, 1)
    assert store.rate_acquire(d, 0, json.dumps(RATE), now) is None


def test_a_line_keeps_its_order_and_goes_as_starts_free(store: Store) -> None:
    ids = rated(store, 4)
    pid = register(store)
    assert claim_all(store, pid) == ids
    now = time.time()
    assert store.rate_acquire(ids[0], 0, json.dumps(RATE), now) is None
    assert store.rate_acquire(ids[1], 0, json.dumps(RATE), now) is None
    # The third and fourth join the line (written by the worker's outcome).
    outcomes = []
    for job_id in ids[2:]:
        denied = store.rate_acquire(job_id, 0, json.dumps(RATE), now)
        assert denied is not None
        outcomes.append(
            Outcome(
                job_id,
                0.0,
                now,
                "throttle",
                retry_at=denied.due_at,
                counts_attempt=False,
                rate_key=denied.key,
            )
        )
    store.claimed_complete(pid, outcomes)
    assert [store.job_get(i).status for i in ids[2:]] == ["SCHEDULED", "SCHEDULED"]
    assert store.job_get(ids[2]).attempts == 0
    # Nothing is due yet: the line waits.
    assert store.throttled_release() == 0
    # A newer job does not jump the line, though a start is free by now.
    with store.engine.begin() as conn:  # the window has passed
        conn.execute(text("UPDATE stalwart_rate_limits SET starts = '[]'"))
    [newer] = rated(store, 1)
    assert store.rate_acquire(newer, 0, json.dumps(RATE), time.time()) is not None
    with store.engine.begin() as conn:
        conn.execute(
            text("UPDATE stalwart_throttled_executions SET due_at = :t"),
            {"t": utcnow() - timedelta(seconds=1)},
        )
    assert store.throttled_release() == 2  # two starts free: both go
    assert [store.job_get(i).status for i in ids[2:]] == ["READY", "READY"]
    assert claim_all(store, pid)[:2] == ids[2:]
