"""Peer benchmark: pgqueuer (the PyPI package, used through its public API) on PostgreSQL.

What it measures
    * enqueue/s: N no-op jobs put in with pgqueuer's batch enqueue (``Queries.enqueue`` with
      lists: one ``INSERT ... SELECT unnest(...)`` statement per chunk), timed from the first
      chunk until the last one is committed.
    * drain/s: N jobs run by W worker processes, each running pgqueuer's own consumer
      (``QueueManager.run(mode=drain)``) with a no-op async entrypoint, timed from the
      moment the connected workers are released until the last worker's ``run`` returns.
      pgqueuer treats a job as finished only once its buffered status-log flush has deleted
      it from the queue table, so that flush is inside the timed window, just as the
      raw-SQL floor's DELETE is.
    * peak_rss_mb: sum of the W workers' peak RSS (see ``_common``).
    * pickup latency: one idle worker running ``QueueManager.run()`` in its default
      continuous mode (LISTEN/NOTIFY wake-ups), jobs enqueued one at a time with
      ``Queries.enqueue`` (see ``_common.LatencyProbe``).

Being fair to pgqueuer
    * A dedicated database (``bench_pgqueuer``). pgqueuer's schema is uninstalled and
      installed again on every run, with pgqueuer's default (durable: logged tables)
      durability, and ANALYZEd before draining (outside the timed window).
    * The asyncpg driver (what pgqueuer's own benchmark defaults to) on the uvloop event
      loop (which pgqueuer's benchmark also uses). ``driver="psycopg"`` selects its psycopg
      driver instead.
    * One ``QueueManager`` per worker process, one connection each, so W workers use W cores
      as W ``pgq run`` processes would. No per-entrypoint or global concurrency limit
      (``max_concurrent_tasks`` unset), and ``batch_size`` 400 instead of pgqueuer's default
      of 10: with 20 000 jobs and 2 workers on a 2-core machine the median drain rate was
      ~4k/s at 10, ~10k/s at 50, ~11.6k/s at 100, ~13k/s at 200, ~14.5k/s at 400 and
      ~9k/s at 1000. Its batch is both the jobs claimed per dequeue and, as every claimed
      job runs as its own asyncio task, the jobs in flight per worker.
    * The enqueue chunk (1000 jobs per statement) matches the floor's multi-row insert size.
    * Jobs carry a small payload (``{"n": i}`` as bytes), like the floor's jsonb payload.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from pgqueuer import AsyncpgDriver, PsycopgDriver, Queries, QueueManager
from pgqueuer.domain.settings import db_settings
from pgqueuer.models import Job
from pgqueuer.ports.driver import Driver
from pgqueuer.types import QueueExecutionMode

# The shared helpers live next to this file; make them importable however it is loaded
# (as a script, as ``benchmarks.peers.<name>``, or from its file path).
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

SYSTEM = "pgqueuer"
DATABASE = "bench_pgqueuer"
ENTRYPOINT = "noop"
LATENCY_ENTRYPOINT = "record_start"
DEFAULT_BATCH_SIZE = 400
DEFAULT_ENQUEUE_CHUNK = 1000
DEFAULT_DRIVER = "asyncpg"

T = TypeVar("T")


async def _connect(dsn: str, driver: str) -> tuple[Driver, Callable[[], Awaitable[None]]]:
    """Open one connection wrapped in the requested pgqueuer driver, plus its closer."""
    if driver == "asyncpg":
        import asyncpg  # type: ignore[import-untyped]

        apg = await asyncpg.connect(dsn=dsn)
        return AsyncpgDriver(apg), apg.close
    if driver == "psycopg":
        import psycopg

        psy = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        return PsycopgDriver(psy), psy.close
    raise ValueError(f"unknown driver {driver!r} (asyncpg or psycopg)")


def _run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run *coro* on uvloop when it is installed (as pgqueuer's benchmark does)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


async def _prepare_and_enqueue(dsn: str, jobs: int, driver: str, chunk: int) -> float:
    """Reinstall pgqueuer's schema, enqueue *jobs* no-op jobs; return enqueue seconds."""
    conn, close = await _connect(dsn, driver)
    try:
        queries = Queries(conn)
        await queries.uninstall()
        await queries.install()
        started = time.perf_counter()
        for first in range(0, jobs, chunk):
            n = min(chunk, jobs - first)
            await queries.enqueue(
                [ENTRYPOINT] * n,
                [b'{"n": %d}' % i for i in range(first, first + n)],
                [0] * n,
            )
        elapsed = time.perf_counter() - started
        await conn.execute(f"ANALYZE {queries.qbe.settings.qualified.queue_table}")
        return elapsed
    finally:
        await close()


async def _drain_worker(dsn: str, driver: str, batch_size: int) -> None:
    """One worker process: a pgqueuer QueueManager draining with a no-op entrypoint."""
    conn, close = await _connect(dsn, driver)
    ran = 0
    try:
        qm = QueueManager(Queries(conn))

        @qm.entrypoint(ENTRYPOINT)
        async def noop(job: Job) -> None:
            nonlocal ran
            ran += 1

        _common.worker_ready_and_wait()
        await qm.run(batch_size=batch_size, mode=QueueExecutionMode.drain)
        finished = time.monotonic()
    finally:
        await close()
    _common.worker_report(ran, finished)


async def _latency_worker(dsn: str, driver: str, batch_size: int, path: str) -> None:
    """The latency probe's worker: pgqueuer's consumer in continuous mode."""
    _common.open_start_log(path)
    conn, close = await _connect(dsn, driver)
    try:
        qm = QueueManager(Queries(conn))

        @qm.entrypoint(LATENCY_ENTRYPOINT)
        async def record_start(job: Job) -> None:
            _common.record_start(int(job.payload or b"-1"))

        _common.worker_ready_and_wait()
        _common.exit_when_parent_lets_go()
        await qm.run(batch_size=batch_size)
    finally:
        await close()


async def _latency(dsn: str, driver: str, batch_size: int) -> _common.Latency:
    conn, close = await _connect(dsn, driver)
    try:
        queries = Queries(conn)
        await queries.clear_queue()
        opts = {"dsn": dsn, "driver": driver, "batch_size": batch_size}
        with _common.LatencyProbe(__file__, opts) as probe:
            for n in range(probe.jobs):
                await asyncio.sleep(probe.until(n))
                await queries.enqueue(LATENCY_ENTRYPOINT, str(n).encode(), 0)
                probe.committed(n)
            return probe.result()
    finally:
        await close()


def _remaining(dsn: str) -> int:
    import psycopg

    with psycopg.connect(dsn) as conn:
        table = db_settings().qualified.queue_table  # "pgqueuer" unless PGQUEUER_* env says
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else -1


def run(
    dsn: str,
    jobs: int,
    workers: int,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    enqueue_chunk: int = DEFAULT_ENQUEUE_CHUNK,
    driver: str = DEFAULT_DRIVER,
    measure_latency: bool = True,
) -> _common.PeerResult:
    """Benchmark pgqueuer: enqueue *jobs* no-op jobs, drain them with *workers* processes."""
    bench_dsn = _common.ensure_database(dsn, DATABASE)
    enqueue_s = _run_async(_prepare_and_enqueue(bench_dsn, jobs, driver, enqueue_chunk))
    opts = {"dsn": bench_dsn, "driver": driver, "batch_size": batch_size}
    drain = _common.run_workers(__file__, [opts] * workers)
    left = _remaining(bench_dsn)
    if drain.jobs_run != jobs or left != 0:
        raise RuntimeError(f"pgqueuer ran {drain.jobs_run} of {jobs} jobs, {left} left in queue")
    pickup = _run_async(_latency(bench_dsn, driver, batch_size)) if measure_latency else None
    return _common.result(SYSTEM, jobs, enqueue_s, drain, latency=pickup)


def _extra_args(parser: Any) -> None:
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE)
    parser.add_argument("--enqueue-chunk", type=int, default=DEFAULT_ENQUEUE_CHUNK)
    parser.add_argument("--driver", choices=["asyncpg", "psycopg"], default=DEFAULT_DRIVER)


def main() -> None:
    import json

    args = _common.parse_args((__doc__ or SYSTEM).splitlines()[0], extra=_extra_args)
    if args.worker is not None:
        opts = _common.worker_options(args.worker)
        if "latency_file" in opts:
            _run_async(
                _latency_worker(
                    opts["dsn"], opts["driver"], int(opts["batch_size"]), opts["latency_file"]
                )
            )
        else:
            _run_async(_drain_worker(opts["dsn"], opts["driver"], int(opts["batch_size"])))
        return
    out = run(
        args.dsn,
        args.jobs,
        args.workers,
        batch_size=args.batch_size,
        enqueue_chunk=args.enqueue_chunk,
        driver=args.driver,
        measure_latency=args.latency,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
