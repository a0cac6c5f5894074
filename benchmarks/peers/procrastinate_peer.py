"""Peer benchmark: procrastinate (the PyPI package, through its public API) on PostgreSQL.

What it measures
    * enqueue/s: N no-op jobs deferred with ``Task.batch_defer_async`` (one call of
      procrastinate's ``procrastinate_defer_jobs`` function per chunk of 1000 jobs), timed
      from the first chunk until the last one is committed.
    * drain/s: W worker processes, each running procrastinate's own worker
      (``App.run_worker_async(wait=False)``: it stops once the queue is empty, after its
      running jobs have finished and been recorded) with an ``async`` no-op task; timed
      from the moment the connected workers are released until the last worker returns.
    * peak_rss_mb: sum of the W workers' peak RSS (see ``_common``).
    * pickup latency: one idle worker with the same settings (``wait=True``, its
      LISTEN/NOTIFY wake-ups on, polling fallback at its default 5 s), jobs deferred one
      at a time with ``Task.defer_async``.

Being fair to procrastinate
    * A dedicated database (``bench_procrastinate``) whose ``public`` schema is dropped and
      procrastinate's schema applied again on every run; the jobs table is ANALYZEd after
      the enqueue (outside the timed window).
    * The psycopg 3 connector (``PsycopgConnector``, an async connection pool) — the one
      its documentation recommends.
    * One worker per process, ``concurrency`` 10 (the Stalwart peer runs 10 threads per
      process) with an ``async def`` task, so the jobs run as asyncio tasks on the
      worker's loop as procrastinate intends; a pool of concurrency + 2 connections so no
      job waits for a connection (procrastinate takes one per fetch and one per finish).
      It hardly matters for throughput: a procrastinate worker fetches one job per query,
      one fetch after the other, and only the jobs themselves overlap. Measured on this
      2-core machine, 2 workers, 3,000 jobs: concurrency 1 ~580/s, 5 ~670/s, 10 ~620/s,
      20 ~610/s (short, noisy runs).
    * Finished jobs are kept (procrastinate's default ``delete_jobs="never"``), as
      Stalwart keeps finished jobs by default; ``--delete-jobs successful`` changes it.
    * Procrastinate fetches one job per query (its design); nothing here batches for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import time
from typing import Any

import procrastinate
import psycopg

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

SYSTEM = "procrastinate"
DATABASE = "bench_procrastinate"
DEFAULT_CONCURRENCY = 10
ENQUEUE_CHUNK = 1000

_ran = 0

# procrastinate warns when its App is made in ``__main__`` because tasks are then named
# after that module; every task here has an explicit name, the same in every process.
logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)


async def noop(n: int) -> None:
    """The drain job: nothing (counted, to check every job ran)."""
    global _ran
    _ran += 1


async def record_start(n: int) -> None:
    _common.record_start(n)


def make_app(dsn: str, concurrency: int) -> procrastinate.App:
    pool = concurrency + 2
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=dsn, min_size=pool, max_size=pool)
    )
    app.task(name="noop")(noop)
    app.task(name="record_start")(record_start)
    return app


def _reset_schema(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


async def _prepare_and_enqueue(dsn: str, jobs: int) -> float:
    _reset_schema(dsn)
    app = make_app(dsn, 1)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()
        task = app.tasks["noop"]
        started = time.perf_counter()
        for first in range(0, jobs, ENQUEUE_CHUNK):
            await task.batch_defer_async(
                *({"n": i} for i in range(first, min(jobs, first + ENQUEUE_CHUNK)))
            )
        elapsed = time.perf_counter() - started
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ANALYZE procrastinate_jobs")
    return elapsed


async def _drain_worker(dsn: str, concurrency: int, delete_jobs: str) -> None:
    app = make_app(dsn, concurrency)
    async with app.open_async():
        await app.check_connection_async()  # connected before the clock starts
        _common.worker_ready_and_wait()
        await app.run_worker_async(
            concurrency=concurrency,
            wait=False,
            delete_jobs=delete_jobs,
            install_signal_handlers=False,
        )
        finished = time.monotonic()
    _common.worker_report(_ran, finished)


async def _latency_worker(dsn: str, concurrency: int, delete_jobs: str, path: str) -> None:
    _common.open_start_log(path)
    app = make_app(dsn, concurrency)
    async with app.open_async():
        await app.check_connection_async()
        _common.worker_ready_and_wait()
        _common.exit_when_parent_lets_go()
        await app.run_worker_async(
            concurrency=concurrency, delete_jobs=delete_jobs, install_signal_handlers=False
        )


async def _latency(dsn: str, concurrency: int, delete_jobs: str) -> _common.Latency:
    app = make_app(dsn, 1)
    async with app.open_async():
        task = app.tasks["record_start"]
        opts = {"dsn": dsn, "concurrency": concurrency, "delete_jobs": delete_jobs}
        with _common.LatencyProbe(__file__, opts) as probe:
            for n in range(probe.jobs):
                await asyncio.sleep(probe.until(n))
                await task.defer_async(n=n)
                probe.committed(n)
            return probe.result()


def _counts(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT status::text, count(*) FROM procrastinate_jobs GROUP BY status"
        ).fetchall()
    return {str(status): int(n) for status, n in rows}


def run(
    dsn: str,
    jobs: int,
    workers: int,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    delete_jobs: str = "never",
    measure_latency: bool = True,
) -> _common.PeerResult:
    """Benchmark procrastinate: enqueue *jobs* no-op jobs, drain with *workers* processes."""
    bench_dsn = _common.ensure_database(dsn, DATABASE)
    enqueue_s = asyncio.run(_prepare_and_enqueue(bench_dsn, jobs))
    opts = {"dsn": bench_dsn, "concurrency": concurrency, "delete_jobs": delete_jobs}
    drain = _common.run_workers(__file__, [opts] * workers)
    counts = _counts(bench_dsn)
    left = counts.get("todo", 0) + counts.get("doing", 0)
    if drain.jobs_run != jobs or left != 0:
        raise RuntimeError(f"procrastinate ran {drain.jobs_run} of {jobs} jobs; {counts}")
    pickup = asyncio.run(_latency(bench_dsn, concurrency, delete_jobs)) if measure_latency else None
    return _common.result(SYSTEM, jobs, enqueue_s, drain, latency=pickup)


def _extra_args(parser: Any) -> None:
    parser.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY)
    parser.add_argument("--delete-jobs", choices=["never", "successful", "always"], default="never")


def main() -> None:
    args = _common.parse_args((__doc__ or SYSTEM).splitlines()[0], extra=_extra_args)
    if args.worker is not None:
        opts = _common.worker_options(args.worker)
        concurrency, delete_jobs = int(opts["concurrency"]), str(opts["delete_jobs"])
        if "latency_file" in opts:
            asyncio.run(
                _latency_worker(opts["dsn"], concurrency, delete_jobs, opts["latency_file"])
            )
        else:
            asyncio.run(_drain_worker(opts["dsn"], concurrency, delete_jobs))
        return
    out = run(
        args.dsn,
        args.jobs,
        args.workers,
        concurrency=args.concurrency,
        delete_jobs=args.delete_jobs,
        measure_latency=args.latency,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
