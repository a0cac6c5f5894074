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
    * pickup latency: the least a PostgreSQL queue can do: each single enqueue is one
      transaction of ``INSERT`` + ``NOTIFY floor_jobs``; one idle worker ``LISTEN``s,
      and on each wake-up (or after 1 s without one) runs the same claim until it comes
      back empty.

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
CHANNEL = "floor_jobs"

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


def _latency_worker(dsn: str, path: str) -> None:
    """The latency probe's worker: LISTEN, claim on every wake-up until empty."""
    _common.open_start_log(path)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"LISTEN {CHANNEL}")
        cur = conn.cursor()
        _common.worker_ready_and_wait()
        _common.exit_when_parent_lets_go()
        while True:
            cur.execute(CLAIM, (QUEUE, CLAIM_BATCH), prepare=True)
            rows = cur.fetchall()
            for _job_id, payload in rows:
                _common.record_start(int(payload["n"]))
            if not rows:
                # Notifications that came while we were claiming wait in psycopg's
                # backlog and are yielded at once: no wake-up is lost.
                for _ in conn.notifies(timeout=1.0, stop_after=1):
                    pass


def _latency(dsn: str) -> _common.Latency:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DELETE FROM floor_jobs")
        with _common.LatencyProbe(__file__, {"dsn": dsn}) as probe:
            for n in range(probe.jobs):
                time.sleep(probe.until(n))
                with conn.transaction():
                    conn.execute(_insert_sql(1), (QUEUE, 0, Jsonb({"n": n})))
                    conn.execute(f"NOTIFY {CHANNEL}")
                probe.committed(n)
            return probe.result()


def run(dsn: str, jobs: int, workers: int, *, measure_latency: bool = True) -> _common.PeerResult:
    """Benchmark the raw-SQL floor: enqueue *jobs* rows, drain with *workers* processes."""
    enqueue_s = _prepare_and_enqueue(dsn, jobs)
    drain = _common.run_workers(__file__, [{"dsn": dsn}] * workers)
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT count(*) FROM floor_jobs").fetchone()
    left = int(row[0]) if row else -1
    if drain.jobs_run != jobs or left != 0:
        raise RuntimeError(f"floor ran {drain.jobs_run} of {jobs} jobs, {left} left in table")
    pickup = _latency(dsn) if measure_latency else None
    return _common.result(SYSTEM, jobs, enqueue_s, drain, latency=pickup)


def main() -> None:
    args = _common.parse_args((__doc__ or SYSTEM).splitlines()[0])
    if args.worker is not None:
        opts = _common.worker_options(args.worker)
        if "latency_file" in opts:
            _latency_worker(opts["dsn"], opts["latency_file"])
        else:
            _drain_worker(opts["dsn"])
        return
    print(json.dumps(run(args.dsn, args.jobs, args.workers, measure_latency=args.latency)))


if __name__ == "__main__":
    main()
