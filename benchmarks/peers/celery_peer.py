"""Peer benchmark: Celery (the PyPI package, through its public API) with a Redis broker.

What it measures
    * enqueue/s: N no-op tasks sent with ``Task.apply_async`` through one producer
      (``app.producer_or_acquire()``: one connection, no pool checkout per task) — Celery
      has no bulk send, each task is one LPUSH — timed from the first to the last send.
    * drain/s: W worker processes, each one Celery worker (``app.Worker``) with the
      ``solo`` pool, so each process runs its tasks itself, as W processes of the other
      peers do; timed from the moment the connected workers are released until the last
      task finished, in whichever worker.  Celery has no "stop when the queue is empty"
      mode, so each worker notes the monotonic time of its last finished task
      (``task_postrun`` signal) and a side thread adds its count to a Redis counter every
      10 ms; once the counter reaches N, every worker reports and exits.
    * peak_rss_mb: sum of the W workers' peak RSS (see ``_common``).
    * pickup latency: one idle worker of the same kind, tasks sent one at a time with
      ``Task.delay``.

Being fair to Celery
    * A Redis database of its own (``redis://127.0.0.1:6379/15`` by default), emptied
      (FLUSHDB) at the start of every run: do not point ``--dsn`` at a database you use.
    * No result backend (Celery's default): Celery then keeps no record of a finished
      task.  Stalwart (and procrastinate) write one per job; ``--results`` gives Celery a
      Redis result backend to measure that cost too.
    * Celery's defaults otherwise: ``acks_late`` off (a task is acknowledged when it is
      received), ``worker_prefetch_multiplier`` 4.  The worker runs with
      ``--without-heartbeat --without-mingle --without-gossip`` (the usual production
      flags; they only cut broadcast traffic between workers) and logs at WARNING.
    * ``solo`` pool, one per process, rather than ``prefork``: a prefork worker with
      concurrency C is a parent plus C children, which would not be W processes; with
      solo each of the W processes both consumes and executes, without the IPC.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import warnings
from typing import Any

from celery import Celery, signals
from redis import Redis

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

SYSTEM = "celery"
DEFAULT_REDIS = "redis://127.0.0.1:6379/15"
DONE_KEY = "bench:done"
REPORT_INTERVAL_S = 0.01

# Celery warns when a worker runs as root (this machine's benchmark user); nothing here
# unpickles untrusted data, so the warning is only noise in the output.
warnings.filterwarnings("ignore", message="You're running the worker with superuser")


def make_app(url: str, results: bool) -> Celery:
    app = Celery("bench", broker=url, backend=url if results else None)
    app.conf.update(
        task_ignore_result=not results,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        # The harness talks to the worker over its stdout: keep Celery off it.
        worker_redirect_stdouts=False,
    )
    app.task(name="bench.noop")(_common.noop)
    app.task(name="bench.record_start")(_common.record_start)
    return app


def _prepare_and_enqueue(url: str, jobs: int, results: bool) -> float:
    redis = Redis.from_url(url)
    redis.flushdb()
    redis.close()
    app = make_app(url, results)
    noop = app.tasks["bench.noop"]
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection()
        started = time.perf_counter()
        for i in range(jobs):
            noop.apply_async((i,), producer=producer)
        elapsed = time.perf_counter() - started
    return elapsed


def _start_worker(app: Celery, on_ready: Any) -> None:
    """Run a solo-pool Celery worker in this process; *on_ready* runs once it is connected
    and consuming, before its event loop takes the first message."""
    signals.worker_ready.connect(on_ready, weak=False)
    worker = app.Worker(
        pool="solo",
        concurrency=1,
        loglevel="WARNING",
        quiet=True,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        hostname=f"bench-{os.getpid()}@localhost",
    )
    worker.start()


def _drain_worker(url: str, results: bool, jobs: int) -> None:
    app = make_app(url, results)
    done = 0
    last_done = time.monotonic()

    def count(**_: Any) -> None:
        nonlocal done, last_done
        done += 1
        last_done = time.monotonic()

    signals.task_postrun.connect(count, weak=False)

    def report_when_all_done() -> None:
        redis = Redis.from_url(url)
        reported = 0
        while True:
            time.sleep(REPORT_INTERVAL_S)
            seen = done
            total = int(redis.incrby(DONE_KEY, seen - reported))
            reported = seen
            if total >= jobs:
                _common.worker_report(done, last_done)
                os._exit(0)

    def on_ready(**_: Any) -> None:
        _common.worker_ready_and_wait()
        threading.Thread(target=report_when_all_done, daemon=True).start()

    _start_worker(app, on_ready)


def _latency_worker(url: str, results: bool, path: str) -> None:
    _common.open_start_log(path)
    app = make_app(url, results)

    def on_ready(**_: Any) -> None:
        _common.worker_ready_and_wait()
        _common.exit_when_parent_lets_go()

    _start_worker(app, on_ready)


def _latency(url: str, results: bool) -> _common.Latency:
    app = make_app(url, results)
    record = app.tasks["bench.record_start"]
    with app.producer_or_acquire() as producer:
        producer.connection.ensure_connection()
        with _common.LatencyProbe(__file__, {"url": url, "results": results}) as probe:
            for n in range(probe.jobs):
                time.sleep(probe.until(n))
                record.apply_async((n,), producer=producer)
                probe.committed(n)
            return probe.result()


def run(
    dsn: str,
    jobs: int,
    workers: int,
    *,
    results: bool = False,
    measure_latency: bool = True,
) -> _common.PeerResult:
    """Benchmark Celery: send *jobs* no-op tasks, drain them with *workers* processes."""
    enqueue_s = _prepare_and_enqueue(dsn, jobs, results)
    opts = {"url": dsn, "results": results, "jobs": jobs}
    drain = _common.run_workers(__file__, [opts] * workers)
    redis = Redis.from_url(dsn)
    left = int(redis.llen("celery"))
    redis.close()
    if drain.jobs_run != jobs or left != 0:
        raise RuntimeError(f"celery ran {drain.jobs_run} of {jobs} tasks, {left} left in queue")
    pickup = _latency(dsn, results) if measure_latency else None
    return _common.result(SYSTEM, jobs, enqueue_s, drain, database="Redis", latency=pickup)


def _extra_args(parser: Any) -> None:
    parser.add_argument("--results", action="store_true", help="a Redis result backend")


def main() -> None:
    args = _common.parse_args(
        (__doc__ or SYSTEM).splitlines()[0],
        extra=_extra_args,
        default_dsn=DEFAULT_REDIS,
        dsn_help="Redis URL, a database of its own: it is FLUSHed",
    )
    if args.worker is not None:
        opts = _common.worker_options(args.worker)
        if "latency_file" in opts:
            _latency_worker(opts["url"], bool(opts["results"]), opts["latency_file"])
        else:
            _drain_worker(opts["url"], bool(opts["results"]), int(opts["jobs"]))
        return
    out = run(args.dsn, args.jobs, args.workers, results=args.results, measure_latency=args.latency)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
