"""The application of the chaos run: each job records its start and end in a table."""

from __future__ import annotations

import os
import random
import time

import psycopg

import stalwart

app = stalwart.App()
_conn: psycopg.Connection[tuple[object, ...]] | None = None
_conn_pid = 0


def _record(job_id: int, event: str) -> None:
    global _conn, _conn_pid
    for _ in range(100):  # the database may be restarting: keep trying
        try:
            if _conn is None or _conn_pid != os.getpid() or _conn.closed:
                _conn = psycopg.connect(os.environ["CHAOS_DSN"], autocommit=True)
                _conn_pid = os.getpid()
            _conn.execute(
                "INSERT INTO chaos_executions (job_id, pid, event) VALUES (%s, %s, %s)",
                (job_id, os.getpid(), event),
            )
            return
        except psycopg.OperationalError:
            _conn = None
            time.sleep(0.2)
    raise RuntimeError("could not record the execution")


@app.task(name="chaos.work")
def work(n: int) -> int:
    job_id = stalwart.current_job().id
    assert job_id is not None
    _record(job_id, "start")
    time.sleep(random.uniform(0.02, 0.3))
    _record(job_id, "end")
    return n
