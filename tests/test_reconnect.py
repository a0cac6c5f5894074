"""After a database restart, stale pooled connections never reach the caller: client
processes with warm pools make 20 calls in a row each (enqueue, get_result, cancel_job)
with no failure, and the dashboard's next page is 200. On private servers (PostgreSQL
from tests/pgserver.py, MariaDB from tests/myserver.py), stopped and started here."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

import stalwart
from stalwart.config import Config
from stalwart.web import BasicAuth, dashboard

from . import bouncer, myserver, pgserver
from .fleet import REPO

pytestmark = pytest.mark.slow

CALLS = 20


@dataclass
class Behind:
    """A private PostgreSQL seen through a private PgBouncer (transaction mode)."""

    server: pgserver.PrivatePostgres
    pooler: bouncer.Bouncer

    @property
    def url(self) -> str:
        return self.pooler.url

    def stop(self) -> None:
        self.server.stop()

    def start(self) -> None:
        self.server.start()


@contextmanager
def server_of(kind: str) -> Iterator[Any]:
    if kind == "mariadb":
        why, made = myserver.why_unavailable(), myserver.private_mariadb
    else:
        why, made = pgserver.why_unavailable(), pgserver.private_postgres
    if kind == "postgresql-pgbouncer" and why is None:
        why = bouncer.why_unavailable()
    if why is not None:
        print(f"\n*** SKIPPED: no private {kind} server can be made here: {why} ***")
        pytest.skip(f"no private {kind} server can be made here: {why}")
    with made() as server:
        app = stalwart.App(config=Config(database_url=server.url, source="tests"))
        app.migrate()
        app.close()
        if kind != "postgresql-pgbouncer":
            yield server
            return
        with bouncer.pgbouncer(server.url) as pooler:
            yield Behind(server, pooler)


def clients(url: str, n: int, *flags: str) -> list[subprocess.Popen[str]]:
    """``n`` client processes, each with a warm pool, waiting for the word to go."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "tests.apps.reconnect_client", url, str(CALLS)]
    procs = [
        subprocess.Popen(
            [*command, str(i % 3), *flags],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(n)
    ]
    for proc in procs:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "warm"
    return procs


def results(procs: list[subprocess.Popen[str]]) -> list[list[dict[str, Any]]]:
    out = []
    for proc in procs:
        stdout, _ = proc.communicate("go\n", timeout=120)
        assert proc.returncode == 0, stdout
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def check(url: str, calls: list[dict[str, Any]]) -> None:
    """Every call succeeded and did what it says, as the database tells it now."""
    failed = [c for c in calls if "error" in c]
    assert failed == [], f"{len(failed)} of {len(calls)} calls failed: {failed}"
    app = stalwart.App(config=Config(database_url=url, source="tests"))
    try:
        for c in calls:
            status = app.get_result(c["job"]).status.value
            if c["verb"] == "cancel_job":
                assert c["cancelled"] is True and status == "FAILED", c
            elif c["verb"] == "get_result":
                assert c["status"] in ("READY", "FAILED"), c
    finally:
        app.close()


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_one_process_by_the_retry_alone(kind: str) -> None:
    """The hang-up check off: the retry before commit alone keeps the calls whole."""
    with server_of(kind) as server:
        procs = clients(server.url, 1, "--no-hangup-check")
        server.stop()
        server.start()
        [calls] = results(procs)
        assert len(calls) == CALLS and calls[0]["verb"] == "enqueue"
        check(server.url, calls)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb"])
def test_eight_processes_and_the_dashboard(kind: str) -> None:
    """8 client processes (each verb first in some of them) and a dashboard, all warm,
    across one restart: 160 calls, none failed; the dashboard's next page is 200."""
    with server_of(kind) as server:
        app = stalwart.App(config=Config(database_url=server.url, source="tests"))
        from starlette.testclient import TestClient

        with TestClient(dashboard(app, auth=BasicAuth(admins={"admin": "pw"}))) as web:
            web.auth = ("admin", "pw")
            assert web.get("/jobs").status_code == 200
            procs = clients(server.url, 8)
            server.stop()
            server.start()
            every = results(procs)
            page = web.get("/jobs")
            assert page.status_code == 200, page.text[:500]
            assert web.get("/").status_code == 200
        app.close()
        for calls in every:
            assert len(calls) == CALLS
            check(server.url, calls)
        # Each verb was the first call after the restart in some process.
        assert {calls[0]["verb"] for calls in every} == {"enqueue", "get_result", "cancel_job"}


def test_behind_pgbouncer_a_restart_goes_unseen() -> None:
    """PostgreSQL restarts behind PgBouncer (transaction mode): PgBouncer keeps the
    client's connections and drops the server connections PostgreSQL closed, so 4
    warm clients' next 20 calls each succeed."""
    with server_of("postgresql-pgbouncer") as server:
        procs = clients(server.url, 4, "--transaction-pooling")
        server.stop()
        server.start()
        every = results(procs)
        for calls in every:
            assert len(calls) == CALLS
            check(server.server.url, calls)  # read back directly


def test_a_pgbouncer_restart_goes_unseen() -> None:
    """PgBouncer itself restarts (SIGTERM: every client socket closed): the hang-up
    check replaces 4 warm clients' connections, whose next 20 calls each succeed."""
    with server_of("postgresql-pgbouncer") as behind:
        procs = clients(behind.url, 4, "--transaction-pooling")
        behind.pooler.stop()
        behind.pooler.start()
        every = results(procs)
        for calls in every:
            assert len(calls) == CALLS
            check(behind.server.url, calls)
