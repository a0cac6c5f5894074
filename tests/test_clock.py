"""One clock, the database's: hosts whose clocks lie still agree on every time.

The fleet test runs two `stalwart start` supervisors against one database under
Debian's `faketime` (LD_PRELOAD libfaketime): one 120 s ahead, one 120 s behind. Their
children inherit the lie. No scheduled job may run more than a second early (the job
itself reads the database's time as it runs), no live process may be pruned, no
recurring run may be doubled or skipped. SQLite is left out: a file on one host has
no clock but that host's.
"""

from __future__ import annotations

import itertools
import logging
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from stalwart.store import Clock, Store, open_store, schema, utcnow

from .fleet import Fleet, stop
from .helpers import recurring_runs, wait_for

# Debian's faketime package (scripts/ensure-faketime.sh installs it for `make test`).
LIBFAKETIME = next(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"), Path("/nonexistent"))
FAKETIME_SITE = Path(__file__).resolve().parent / "faketime"


# ---- the clock itself ----


def test_clock_read_is_the_database_time_and_sync_measures_the_offset(db_url: str) -> None:
    store = open_store(db_url)
    try:
        # Same machine: the database's clock is this host's.
        assert abs((store.clock_read() - utcnow()).total_seconds()) < 5
        offset = store.clock.sync("test")
        assert abs(offset) < 5 and not store.clock.due(60)
        assert store.clock.measures == (not store.caps.single_writer)
    finally:
        store.dispose()


def test_an_offset_past_the_tolerance_is_told_once_per_change(
    caplog: pytest.LogCaptureFixture,
) -> None:
    skew = [120.0]
    clock = Clock(lambda: utcnow() + timedelta(seconds=skew[0]), tolerance=30)
    with caplog.at_level(logging.WARNING, logger="stalwart.clock"):
        clock.sync("p")
        clock.sync("p")  # the same offset: not told again
        assert abs(clock.offset - 120) < 1
        assert abs((clock.now() - utcnow()).total_seconds() - 120) < 1
        skew[0] = -200.0
        clock.sync("p")
        skew[0] = 1.0
        clock.sync("p")
        clock.sync("p")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "120.0 s behind the database's" in lines[0]
    assert "200.0 s ahead of the database's" in lines[1]
    assert "back within clock_tolerance" in lines[2]


def test_heartbeats_record_the_hosts_offset(db_url: str) -> None:
    store = open_store(db_url)
    try:
        pid = store.process_register(kind="worker", name="w", pid=1, hostname="h")
        store.clock.offset = -42.5  # as if measured on a host 42.5 s ahead
        assert store.process_heartbeat(pid)
        [row] = store.processes_list()
        assert row.clock_offset == pytest.approx(-42.5, abs=0.01)
    finally:
        store.dispose()


# ---- two hosts, 240 s apart, one database ----


def _lying(fleet: Fleet, skew: str) -> dict[str, str]:
    """The environment of a host whose wall clock is ``skew`` off (children inherit it)."""
    return {
        "LD_PRELOAD": str(LIBFAKETIME),
        "FAKETIME": skew,
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",  # only the wall clock lies
        # time.sleep that works under libfaketime (see its docstring).
        "PYTHONPATH": f"{FAKETIME_SITE}{os.pathsep}{fleet.env()['PYTHONPATH']}",
    }


def _process_ids(store: Store) -> set[int]:
    pr = schema.processes
    with store.engine.connect() as conn:
        return {int(i) for i in conn.execute(select(pr.c.id)).scalars()}


@pytest.mark.skipif(not LIBFAKETIME.exists(), reason="apt-get install faketime")
@pytest.mark.parametrize("backend", ["postgresql", "mariadb"])
def test_supervisors_120_s_ahead_and_behind_share_the_databases_clock(fleet: Fleet) -> None:
    fleet.configure(processes=1, threads=2)
    app = fleet.app
    app.recurring.add("tick", "proc.db_time", "every second")
    ahead = fleet.start(env=_lying(fleet, "+120s"))
    behind = fleet.start(env=_lying(fleet, "-120s"))
    store = app.store
    try:
        # Both fleets up: 2 x (supervisor, worker, dispatcher, scheduler).
        wait_for(lambda: len(_process_ids(store)) >= 8, 60, "both fleets registered")
        time.sleep(1.5)  # a few heartbeats and prunes of each
        live = _process_ids(store)
        scheduled = []
        for i in range(12):
            result = app.enqueue("proc.db_time", run_after=timedelta(seconds=1 + i * 0.5))
            scheduled.append(result.id)
        wait_for(
            lambda: all(fleet.status(j).name == "SUCCESSFUL" for j in scheduled),
            60,
            "the scheduled jobs",
        )
        time.sleep(3)  # more recurring runs, more heartbeats
        # No live process was pruned (or pruned and registered again).
        assert live <= _process_ids(store)
        offsets = sorted(round(p.clock_offset or 0) for p in store.processes_list())
        assert offsets[0] in (-121, -120, -119) and offsets[-1] in (119, 120, 121), offsets
    finally:
        outputs = [stop(ahead, signal.SIGTERM), stop(behind, signal.SIGTERM)]
    for out in outputs:
        assert "pruning" not in out and "jobs of a dead process" not in out, out[-3000:]
    assert "120.0 s ahead of the database's" in outputs[0], outputs[0][-3000:]
    assert "120.0 s behind the database's" in outputs[1], outputs[1][-3000:]

    # No scheduled job ran early: each read the database's time as it ran.
    for job_id in scheduled:
        job = app.get_result(job_id)
        ran_at = datetime.fromisoformat(job.return_value).replace(tzinfo=UTC)
        assert job.scheduled_at is not None
        early = (job.scheduled_at - ran_at).total_seconds()
        assert early <= 1.0, f"job {job_id} ran {early:.3f} s before its time"

    # Recurring: one run per second, none skipped, none early.
    runs = sorted(t for t, _ in recurring_runs(store, "tick"))
    assert len(runs) >= 5, runs
    steps = {(b - a).total_seconds() for a, b in itertools.pairwise(runs)}
    assert steps == {1.0}, sorted(steps)
    for run_at, job_id in recurring_runs(store, "tick"):
        if job_id is None:
            continue
        job = app.get_result(job_id)
        if job.return_value is None:
            continue  # enqueued as the fleets stopped
        ran_at = datetime.fromisoformat(job.return_value)
        assert (run_at - ran_at).total_seconds() <= 1.0, (run_at, ran_at)
