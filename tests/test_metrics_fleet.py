"""`stalwart start --metrics-port`: the counters of a real fleet (forked workers) sum
exactly to what the database says, also after a worker is SIGKILLed and replaced."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import urllib.request
from collections import Counter
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from stalwart.store import schema

from .fleet import Fleet, children_of, stop
from .helpers import wait_for

pytestmark = pytest.mark.slow

CRASH_CLASSES = {"stalwart.errors.ProcessExited", "stalwart.errors.ProcessPruned"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def scrape(port: int, path: str = "/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
        return str(answer.read().decode())


def counters(text: str) -> dict[tuple[str, str, str], float]:
    """{(task, outcome, series): value} of the finished counter and duration counts."""
    out: dict[tuple[str, str, str], float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "stalwart_jobs_finished_total" and s.value:
                out[(s.labels["task"], s.labels["outcome"], "finished")] = s.value
            elif s.name == "stalwart_job_duration_seconds_count" and s.value:
                out[(s.labels["task"], "", "duration_count")] = s.value
    return out


def expected_from_database(fleet: Fleet) -> dict[tuple[str, str, str], float]:
    """The same numbers, derived from the jobs' rows alone."""
    j, f = schema.jobs, schema.failed_executions
    with fleet.app.store.engine.connect() as conn:
        rows = conn.execute(
            select(j.c.id, j.c.task_name, j.c.attempts, j.c.crashes, j.c.errors, j.c.finished_at)
        ).all()
        failed = set(conn.execute(select(f.c.job_id)).scalars())
    out: Counter[tuple[str, str, str]] = Counter()
    for job_id, task, attempts, crashes, errors, finished_at in rows:
        errs = [e for e in json.loads(errors or "[]") if e["class"] not in CRASH_CLASSES]
        discarded = bool(errs) and bool(errs[-1].get("discarded"))
        for i, _ in enumerate(errs):
            last = i == len(errs) - 1
            outcome = "retried"
            if last and discarded:
                outcome = "discarded"
            elif last and job_id in failed:
                outcome = "failed"
            out[(task, outcome, "finished")] += 1
        if finished_at is not None and not discarded:
            out[(task, "succeeded", "finished")] += 1
        if crashes:
            out[(task, "crashed", "finished")] += crashes
        if attempts:
            out[(task, "", "duration_count")] += attempts
    return {k: float(v) for k, v in out.items()}


def test_counters_sum_to_the_database_before_and_after_a_worker_is_sigkilled(
    fleet: Fleet,
) -> None:
    from tests.apps.obsapp import app as obsapp

    fleet.app.tasks.update(obsapp.tasks)
    fleet.configure(app="tests.apps.obsapp:app", processes=2, threads=4)
    port = free_port()
    mix = [("obs.ok", 700), ("obs.flaky", 150), ("obs.broken", 100), ("obs.gone", 50)]
    for task, n in mix:
        fleet.app.enqueue_many(task, [((i,), {}) for i in range(n)])
    sup = fleet.start("--metrics-port", str(port))
    last: dict[str, Any] = {}

    def agrees() -> bool:
        time.sleep(0.5)  # gently: on SQLite every look takes the write lock
        if fleet.app.store.jobs_any_due(None):
            last["pending"] = fleet.app.store.jobs_pending_count()
            return False
        try:
            last["scraped"] = counters(scrape(port))
        except OSError:
            return False
        last["db"] = expected_from_database(fleet)
        return last["scraped"] == last["db"]

    def settle() -> None:
        try:
            wait_for(agrees, 120, what="the scrape to match the database")
        except AssertionError:
            diff = {k: (last.get("scraped", {}).get(k), v) for k, v in last.get("db", {}).items()}
            out = stop(sup)
            raise AssertionError(
                f"scraped vs database: {diff}; scraped: {last}; fleet said: {out[-3000:]}"
            ) from None

    try:
        settle()
        first = dict(last["db"])
        assert first[("obs.ok", "succeeded", "finished")] == 700
        assert first[("obs.flaky", "retried", "finished")] == 150
        assert first[("obs.flaky", "succeeded", "finished")] == 150
        assert first[("obs.broken", "retried", "finished")] == 100
        assert first[("obs.broken", "failed", "finished")] == 100
        assert first[("obs.gone", "discarded", "finished")] == 50

        # A worker dies mid-job (alone on it: charged a crash) and is replaced.
        workers_before = set(children_of(sup.pid))
        victim_job = fleet.enqueue("obs.sleep", 2.0)
        wait_for(lambda: any(e[:2] == ("start", victim_job) for e in fleet.events()))
        [victim] = [pid for event, job, pid in fleet.events() if job == victim_job]
        os.kill(victim, signal.SIGKILL)
        wait_for(
            lambda: set(children_of(sup.pid)) - workers_before,
            what="a replacement worker",
        )
        fleet.app.enqueue_many("obs.ok", [((i,), {}) for i in range(100)])
        settle()
        after = dict(last["db"])
        assert after[("obs.sleep", "crashed", "finished")] == 1
        assert after[("obs.ok", "succeeded", "finished")] == 800
        text = scrape(port)
        assert "stalwart_database_up 1.0" in text
        assert 'stalwart_processes{kind="worker"}' in text
    finally:
        out = stop(sup)
    assert sup.returncode == 0, out
