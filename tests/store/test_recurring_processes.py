"""Recurring tasks and the process registry."""

from __future__ import annotations

import threading
from datetime import timedelta

from stalwart.store import RecurringTaskRow, Store, utcnow

from ..helpers import backdate_heartbeat, recurring_runs
from .conftest import job, register


def test_recurring_upsert_list_remove_and_static_sync(store: Store) -> None:
    store.recurring_upsert(RecurringTaskRow("dyn", "every minute", task_name="t", static=False))
    store.recurring_sync_static(
        [RecurringTaskRow("a", "every hour", task_name="t"), RecurringTaskRow("b", "0 9 * * *")]
    )
    assert [r.key for r in store.recurring_list()] == ["a", "b", "dyn"]
    store.recurring_upsert(RecurringTaskRow("a", "every 2 hours", task_name="t", args=(1,)))
    store.recurring_sync_static([RecurringTaskRow("a", "every 2 hours", task_name="t")])
    rows = {r.key: r for r in store.recurring_list()}
    assert sorted(rows) == ["a", "dyn"]  # static "b" gone, run-time "dyn" kept
    assert rows["a"].schedule == "every 2 hours"
    assert store.recurring_remove("dyn") and not store.recurring_remove("dyn")


def test_each_run_is_enqueued_once_whoever_races_for_it(store: Store) -> None:
    run_at = utcnow().replace(microsecond=0)
    won: list[int | None] = []
    barrier = threading.Barrier(4)

    def scheduler() -> None:
        barrier.wait()
        won.append(store.recurring_enqueue("tick", run_at, job(task="tick")))

    threads = [threading.Thread(target=scheduler) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [w for w in won if w is not None]
    assert len(winners) == 1 and len(won) == 4
    assert recurring_runs(store, "tick") == [(run_at, winners[0])]
    assert store.recurring_last_runs() == {"tick": run_at}
    assert store.job_get(winners[0]).status == "READY"


def test_processes_register_heartbeat_go_stale_and_deregister(store: Store) -> None:
    a = register(store, "a")
    b = store.process_register(
        kind="worker", name="b", pid=7, hostname="h", supervisor_id=a, metadata={"threads": 3}
    )
    row = store.process_by_name("b")
    assert row is not None and (row.id, row.supervisor_id, row.metadata) == (b, a, {"threads": 3})
    assert store.process_by_name("nobody") is None
    backdate_heartbeat(store, b, timedelta(minutes=5))
    assert [p.id for p in store.processes_stale(timedelta(minutes=1))] == [b]
    assert store.process_heartbeat(b)
    assert store.processes_stale(timedelta(minutes=1)) == []
    store.process_deregister(b)
    assert not store.process_heartbeat(b)
    assert [p.name for p in store.processes_list()] == ["a"]
