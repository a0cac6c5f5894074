"""ready_claim: order, limits, queue patterns, pauses, exclusivity."""

from __future__ import annotations

import threading
from collections import Counter

from stalwart.store import QueueSelector, Store

from ..helpers import count
from .conftest import claim_all, job, register


def test_claims_in_priority_then_fifo_order_up_to_the_limit(store: Store) -> None:
    low, high, mid1, mid2 = store.jobs_enqueue([job(priority=-5), job(priority=9), job(), job()])
    pid = register(store)
    first = store.ready_claim(pid, QueueSelector(), 3)
    assert [c.id for c in first] == [high, mid1, mid2]
    assert first[0].priority == 9 and first[0].attempts == 0 and first[0].task_name == "t.task"
    assert claim_all(store, pid) == [low]
    assert claim_all(store, pid) == []
    assert sorted(store.claimed_by(pid)) == sorted([low, high, mid1, mid2])
    assert count(store, "ready_executions") == 0


def test_a_claim_of_nothing_or_of_zero_touches_nothing(store: Store) -> None:
    assert store.ready_claim(None, QueueSelector(), 10) == []
    [job_id] = store.jobs_enqueue([job()])
    assert store.ready_claim(None, QueueSelector(), 0) == []
    assert store.job_get(job_id).status == "READY"


def test_queue_names_prefixes_and_their_order(store: Store) -> None:
    mail, mail_bulk, axb, a_b, other = store.jobs_enqueue(
        [
            job(queue="mail"),
            job(queue="mail.bulk"),
            job(queue="aXb"),
            job(queue="a_b"),
            job(queue="x"),
        ]
    )
    assert claim_all(store, patterns=("mail",)) == [mail]
    # "_" is a letter here, not LIKE's wildcard.
    assert claim_all(store, patterns=("a_*",)) == [a_b]
    # Patterns in the order given; a job matched by two patterns is claimed once.
    assert claim_all(store, patterns=("x", "mail*", "*")) == [other, mail_bulk, axb]


def test_paused_queues_are_skipped_until_resumed(store: Store) -> None:
    mail, other = store.jobs_enqueue([job(queue="mail", priority=5), job(queue="other")])
    assert store.queue_pause("mail")
    assert claim_all(store) == [other]
    assert claim_all(store, patterns=("mail",)) == []
    assert store.queue_resume("mail")
    assert claim_all(store) == [mail]


def test_concurrent_claimers_never_take_the_same_job(store: Store) -> None:
    ids = store.jobs_enqueue([job() for _ in range(200)])
    taken: list[int] = []
    lock = threading.Lock()
    pids = [register(store, f"w{i}") for i in range(4)]

    def claimer(pid: int) -> None:
        while True:
            got = store.ready_claim(pid, QueueSelector(), 7)
            if not got:
                return
            with lock:
                taken.extend(c.id for c in got)

    threads = [threading.Thread(target=claimer, args=(pid,)) for pid in pids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert Counter(taken) == Counter(ids)
    assert sum(len(store.claimed_by(pid)) for pid in pids) == 200
