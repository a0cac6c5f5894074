"""Peer benchmark: RQ (the PyPI package, through its public API) on Redis.

What it measures
    * enqueue/s: N no-op jobs put in with ``Queue.enqueue_many`` (one Redis pipeline per
      chunk of 1000 jobs), timed from the first chunk until the last pipeline returns.
    * drain/s: W worker processes, each one RQ worker in burst mode
      (``Worker.work(burst=True)``: it returns once the queue is empty), timed from the
      moment the connected workers are released until the last ``work`` returns.
    * peak_rss_mb: sum of the W workers' peak RSS (see ``_common``); with the forking
      worker class this is the parent's, the short-lived work horses are not counted.
    * pickup latency: one idle worker (``work()`` without burst: it waits on Redis with a
      blocking pop), jobs enqueued one at a time with ``Queue.enqueue``.

Being fair to RQ
    * A Redis database of its own (``redis://127.0.0.1:6379/14`` by default), emptied
      (FLUSHDB) at the start of every run: do not point ``--dsn`` at a database you use.
    * ``SimpleWorker`` by default: RQ's documented fast path, which runs jobs in the
      worker process.  RQ's default ``Worker`` forks a "work horse" per job (isolation,
      at the cost of a fork per job); ``--worker-class fork`` measures that one.
    * Logging at WARNING (``rq worker --quiet``): the other peers do not log a line per
      job either.  Results are kept as RQ does by default (``result_ttl`` 500 s).
    * The job function is ``_common.noop``, importable by the workers (RQ names jobs by
      import path).
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from redis import Redis
from rq import Queue, SimpleWorker, Worker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

SYSTEM = "rq"
DEFAULT_REDIS = "redis://127.0.0.1:6379/14"
QUEUE = "bench"
ENQUEUE_CHUNK = 1000
WORKER_CLASSES: dict[str, type[Worker] | type[SimpleWorker]] = {
    "simple": SimpleWorker,
    "fork": Worker,
}


def _prepare_and_enqueue(url: str, jobs: int) -> float:
    redis = Redis.from_url(url)
    redis.flushdb()
    queue = Queue(QUEUE, connection=redis)
    started = time.perf_counter()
    for first in range(0, jobs, ENQUEUE_CHUNK):
        queue.enqueue_many(
            [
                Queue.prepare_data(_common.noop, (i,))
                for i in range(first, min(jobs, first + ENQUEUE_CHUNK))
            ]
        )
    elapsed = time.perf_counter() - started
    redis.close()
    return elapsed


def _make_worker(url: str, worker_class: str) -> Any:
    redis = Redis.from_url(url)
    redis.ping()  # connected before the clock starts
    return WORKER_CLASSES[worker_class]([Queue(QUEUE, connection=redis)], connection=redis)


def _drain_worker(url: str, worker_class: str) -> None:
    worker = _make_worker(url, worker_class)
    _common.worker_ready_and_wait()
    worker.work(burst=True, logging_level="WARNING")
    finished = time.monotonic()
    # RQ keeps its per-worker counts in Redis (the key outlives the worker by 60 s).
    worker.refresh()
    _common.worker_report(worker.successful_job_count, finished)


def _latency_worker(url: str, worker_class: str, path: str) -> None:
    _common.open_start_log(path)
    worker = _make_worker(url, worker_class)
    _common.worker_ready_and_wait()
    _common.exit_when_parent_lets_go()
    worker.work(logging_level="WARNING")


def _latency(url: str, worker_class: str) -> _common.Latency:
    redis = Redis.from_url(url)
    queue = Queue(QUEUE, connection=redis)
    queue.empty()
    with _common.LatencyProbe(__file__, {"url": url, "worker_class": worker_class}) as probe:
        for n in range(probe.jobs):
            time.sleep(probe.until(n))
            queue.enqueue(_common.record_start, n)
            probe.committed(n)
        result = probe.result()
    redis.close()
    return result


def run(
    dsn: str,
    jobs: int,
    workers: int,
    *,
    worker_class: str = "simple",
    measure_latency: bool = True,
) -> _common.PeerResult:
    """Benchmark RQ: enqueue *jobs* no-op jobs, drain them with *workers* processes."""
    enqueue_s = _prepare_and_enqueue(dsn, jobs)
    drain = _common.run_workers(__file__, [{"url": dsn, "worker_class": worker_class}] * workers)
    redis = Redis.from_url(dsn)
    left = Queue(QUEUE, connection=redis).count
    redis.close()
    if drain.jobs_run != jobs or left != 0:
        raise RuntimeError(f"rq ran {drain.jobs_run} of {jobs} jobs, {left} left in queue")
    pickup = _latency(dsn, worker_class) if measure_latency else None
    return _common.result(SYSTEM, jobs, enqueue_s, drain, database="Redis", latency=pickup)


def _extra_args(parser: Any) -> None:
    parser.add_argument("--worker-class", choices=sorted(WORKER_CLASSES), default="simple")


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
            _latency_worker(opts["url"], opts["worker_class"], opts["latency_file"])
        else:
            _drain_worker(opts["url"], opts["worker_class"])
        return
    out = run(
        args.dsn,
        args.jobs,
        args.workers,
        worker_class=args.worker_class,
        measure_latency=args.latency,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
