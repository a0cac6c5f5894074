"""Peer benchmark: the raw-SQL floor, a job queue with no framework at all (psycopg 3).

What it measures
    * enqueue/s: N rows put into ``floor_jobs(id bigserial, queue, priority, payload jsonb)``
      (indexed on ``(queue, priority DESC, id)``) with one multi-row INSERT of 1000 rows per
      statement, each committed on its own, timed from the first statement to the last
      commit.
    * drain/s: W worker processes, one autocommit connection each, loop on
      ``DELETE ... WHERE id IN (SELECT ... ORDER BY priority DESC, id LIMIT 100 FOR UPDATE
      SKIP LOCKED) RETURNING id, payload`` and "run" each returned job as a no-op until the
      DELETE comes back empty; timed from the moment the connected workers are released
      until the last worker sees an empty queue.
    * peak_rss_mb: sum of the W workers' peak RSS (see ``_common``).

This is the cost of "claim + finish" with nothing on top (no status, retries, heartbeats,
results or logging): a framework on the same database cannot beat it by much, so it shows
how much of the gap to the ideal a real job system spends on its features.  To keep it an
honest floor it gets the same setup as the peers: the table is dropped and recreated on
every run, ANALYZEd after the enqueue (outside the timed window), the DELETE is a
server-side prepared statement, and W worker processes mirror W workers of the others.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

# The shared helpers live next to this file; make them importable however it is loaded
# (as a script, as ``benchmarks.peers.<name>``, or from its file path).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

SYSTEM = "raw-sql-floor"
QUEUE = "default"
INSERT_CHUNK = 1000
CLAIM_BATCH = 100

SCHEMA = (
    "DROP TABLE IF EXISTS floor_jobs",
    "CREATE TABLE floor_jobs ("
    " id bigserial PRIMARY KEY, queue text NOT NULL, priority int NOT NULL, payload jsonb)",
    "CREATE INDEX floor_jobs_pick ON floor_jobs (queue, priority DESC, id)",
)

CLAIM = (
    "DELETE FROM floor_jobs WHERE id IN ("
    " SELECT id FROM floor_jobs WHERE queue = %s"
    " ORDER BY priority DESC, id LIMIT %s FOR UPDATE SKIP LOCKED"
    ") RETURNING id, payload"
)


def _noop(job_id: int, payload: Any) -> None:
    """The job body: nothing."""


def _insert_sql(rows: int) -> str:
    values = ", ".join(["(%s, %s, %s)"] * rows)
    return f"INSERT INTO floor_jobs (queue, priority, payload) VALUES {values}"


def _prepare_and_enqueue(dsn: str, jobs: int) -> float:
    """Recreate ``floor_jobs`` and insert *jobs* rows; return the enqueue seconds."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        for statement in SCHEMA:
            conn.execute(statement)
        started = time.perf_counter()
        for first in range(0, jobs, INSERT_CHUNK):
            n = min(INSERT_CHUNK, jobs - first)
            params: list[Any] = []
            for i in range(first, first + n):
                params += (QUEUE, 0, Jsonb({"n": i}))
            conn.execute(_insert_sql(n), params)  # autocommit: one commit per chunk
        elapsed = time.perf_counter() - started
        conn.execute("ANALYZE floor_jobs")
    return elapsed


def _drain_worker(dsn: str) -> None:
    """One worker process: claim-and-delete batches until the queue is empty."""
    ran = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.cursor()
        _common.worker_ready_and_wait()
        while True:
            cur.execute(CLAIM, (QUEUE, CLAIM_BATCH), prepare=True)
            rows = cur.fetchall()
            if not rows:
                break
            for job_id, payload in rows:
                _noop(job_id, payload)
            ran += len(rows)
        finished = time.monotonic()
    _common.worker_report(ran, finished)


def run(dsn: str, jobs: int, workers: int) -> _common.PeerResult:
    """Benchmark the raw-SQL floor: enqueue *jobs* rows, drain with *workers* processes."""
    enqueue_s = _prepare_and_enqueue(dsn, jobs)
    drain = _common.run_workers(__file__, [{"dsn": dsn}] * workers)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM floor_jobs").fetchone()
    left = int(row[0]) if row else -1
    if drain.jobs_run != jobs or left != 0:
        raise RuntimeError(f"floor ran {drain.jobs_run} of {jobs} jobs, {left} left in table")
    return _common.result(SYSTEM, jobs, enqueue_s, drain)


def main() -> None:
    args = _common.parse_args((__doc__ or SYSTEM).splitlines()[0])
    if args.worker is not None:
        _drain_worker(_common.worker_options(args.worker)["dsn"])
        return
    print(json.dumps(run(args.dsn, args.jobs, args.workers)))


if __name__ == "__main__":
    main()
