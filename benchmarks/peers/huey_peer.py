"""Peer benchmark: huey (the PyPI package, through its public API) with its SQLite storage.

What it measures
    * enqueue/s: N no-op jobs put in with ``TaskWrapper.map`` — huey has no bulk enqueue,
      so that is one INSERT and one commit per job, its own way — timed from the first job
      until the last one is committed.
    * drain/s: W worker processes, each running one huey consumer worker
      (``huey.consumer.Worker``: dequeue one task, execute it, repeat; sleep with back-off
      when the queue is empty), the loop that ``huey_consumer -k process -w W`` runs in
      each of its W worker processes; timed from the moment the workers are released until
      the last worker's last task is done (a worker stops at its first empty dequeue, as
      nothing is enqueued during the drain; the sleep that follows it is not counted).
    * peak_rss_mb: sum of the W workers' peak RSS (see ``_common``).
    * pickup latency: one idle worker of the same kind, tasks enqueued one at a time by
      calling the task.

Being fair to huey
    * ``SqliteHuey`` on a file of its own, made new every run, in WAL mode (huey's default
      journal mode) with ``synchronous=NORMAL`` on every connection — what Stalwart uses
      on SQLite, so both make the same durability promise (huey's own default leaves
      SQLite's FULL, a sync per commit; ``--fsync`` selects that).
    * Polling: huey's worker sleeps ``delay`` after an empty dequeue, growing by
      ``backoff`` (1.15, its default) up to ``max_delay`` (10 s, its default).  Its default
      first delay is 0.1 s; here it is 0.01 s, the same 10 ms that the Stalwart peer polls
      at, so the pickup latencies compare polling loops of the same period.
    * Results on (huey's default); a no-op returns None, which huey does not store.
    * huey's consumer also runs a scheduler thread/process (scheduled and periodic
      tasks); it is left out, as nothing here is scheduled.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
from typing import Any

from huey import SqliteHuey
from huey.consumer import Worker

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common

SYSTEM = "huey"
DEFAULT_DELAY = 0.01
MAX_DELAY = 10.0
BACKOFF = 1.15


class Bench:
    """A SqliteHuey on *path* with the two benchmark tasks registered."""

    def __init__(self, path: str, fsync: bool) -> None:
        self.huey = SqliteHuey("bench", filename=path)
        if not fsync:
            # Per connection: huey opens one per storage object, used by this process.
            self.huey.storage.conn.execute("PRAGMA synchronous=NORMAL")
        self.noop = self.huey.task(name="noop")(_common.noop)
        self.record_start = self.huey.task(name="record_start")(_common.record_start)


def path_of(dsn: str) -> str:
    """``sqlite:////abs/path.db`` or a plain path -> the file path."""
    return dsn[len("sqlite:///") :] if dsn.startswith("sqlite:///") else dsn


def _prepare_and_enqueue(path: str, jobs: int, fsync: bool) -> float:
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    bench = Bench(path, fsync)
    started = time.perf_counter()
    bench.noop.map(range(jobs))
    elapsed = time.perf_counter() - started
    bench.huey.storage.close()
    return elapsed


def _worker(huey: Any, delay: float) -> Worker:
    worker = Worker(huey, threading.Event(), delay, MAX_DELAY, BACKOFF)
    worker.initialize()
    return worker


def _drain_worker(path: str, fsync: bool, delay: float) -> None:
    worker = _worker(Bench(path, fsync).huey, delay)
    _common.worker_ready_and_wait()
    finished = time.monotonic()
    while True:
        before = worker.task_count
        worker.loop()
        if worker.task_count == before:
            break  # an empty dequeue: the queue is drained
        finished = time.monotonic()
    _common.worker_report(worker.task_count, finished)


def _latency_worker(path: str, fsync: bool, delay: float, log: str) -> None:
    _common.open_start_log(log)
    worker = _worker(Bench(path, fsync).huey, delay)
    _common.worker_ready_and_wait()
    _common.exit_when_parent_lets_go()
    while True:
        worker.loop()


def _latency(path: str, fsync: bool, delay: float) -> _common.Latency:
    bench = Bench(path, fsync)
    bench.huey.flush()
    opts = {"path": path, "fsync": fsync, "delay": delay}
    with _common.LatencyProbe(__file__, opts) as probe:
        for n in range(probe.jobs):
            time.sleep(probe.until(n))
            bench.record_start(n)
            probe.committed(n)
        return probe.result()


def run(
    dsn: str,
    jobs: int,
    workers: int,
    *,
    fsync: bool = False,
    delay: float = DEFAULT_DELAY,
    measure_latency: bool = True,
) -> _common.PeerResult:
    """Benchmark huey on SQLite: enqueue *jobs* no-op jobs, drain with *workers* processes."""
    path = path_of(dsn)
    enqueue_s = _prepare_and_enqueue(path, jobs, fsync)
    opts = {"path": path, "fsync": fsync, "delay": delay}
    drain = _common.run_workers(__file__, [opts] * workers)
    left = Bench(path, fsync).huey.pending_count()
    if drain.jobs_run != jobs or left != 0:
        raise RuntimeError(f"huey ran {drain.jobs_run} of {jobs} jobs, {left} left")
    pickup = _latency(path, fsync, delay) if measure_latency else None
    return _common.result(SYSTEM, jobs, enqueue_s, drain, database="SQLite", latency=pickup)


def _extra_args(parser: Any) -> None:
    parser.add_argument(
        "--fsync", action="store_true", help="SQLite synchronous=FULL (huey's default)"
    )
    parser.add_argument("--delay", type=float, default=DEFAULT_DELAY, help="first poll delay")


def main() -> None:
    default = f"sqlite:///{os.path.join(tempfile.gettempdir(), 'bench-huey.db')}"
    args = _common.parse_args(
        (__doc__ or SYSTEM).splitlines()[0],
        extra=_extra_args,
        default_dsn=default,
        dsn_help="SQLite file for huey (sqlite:///PATH or PATH)",
    )
    if args.worker is not None:
        opts = _common.worker_options(args.worker)
        path, fsync, delay = str(opts["path"]), bool(opts["fsync"]), float(opts["delay"])
        if "latency_file" in opts:
            _latency_worker(path, fsync, delay, opts["latency_file"])
        else:
            _drain_worker(path, fsync, delay)
        return
    out = run(
        args.dsn,
        args.jobs,
        args.workers,
        fsync=args.fsync,
        delay=args.delay,
        measure_latency=args.latency,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
