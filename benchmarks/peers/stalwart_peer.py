"""Stalwart itself, measured by the same harness as its peers.

Enqueue: ``app.enqueue_many`` of N no-op jobs (multi-row INSERTs) in the calling process.
Drain: W worker processes, each one `stalwart.processes.Worker` with ``--threads`` threads,
released together; each reports when the queue became empty.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _common

import stalwart
from stalwart.config import Config
from stalwart.processes import Worker

SYSTEM = "stalwart"


def make_app(url: str) -> stalwart.App:
    app = stalwart.App(config=Config(database_url=url, source="benchmark"))
    app.task(name="noop")(noop)
    return app


def noop(n: int) -> None:
    return None


def to_url(dsn: str) -> str:
    """Peers speak plain PostgreSQL DSNs; other URLs (sqlite://, mysql://) pass through."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return dsn
    return dsn


def enqueue(url: str, jobs: int) -> float:
    app = make_app(url)
    app.migrate()
    app.store.tables_reset()
    started = time.perf_counter()
    chunk = 10_000
    for start in range(0, jobs, chunk):
        app.enqueue_many("noop", [((i,), {}) for i in range(start, min(jobs, start + chunk))])
    elapsed = time.perf_counter() - started
    app.close()
    return elapsed


def run(
    dsn: str, jobs: int, workers: int, *, threads: int = 10, prefetch: int = 200
) -> _common.PeerResult:
    url = to_url(dsn)
    enqueue_s = enqueue(url, jobs)
    drain = _common.run_workers(
        __file__, [{"url": url, "threads": threads, "prefetch": prefetch}] * workers
    )
    app = make_app(url)
    left = app.store.jobs_pending_count()
    app.close()
    if drain.jobs_run != jobs or left != 0:
        raise RuntimeError(f"stalwart ran {drain.jobs_run} of {jobs} jobs, {left} left")
    return _common.result(SYSTEM, jobs, enqueue_s, drain)


def _drain_worker(url: str, threads: int, prefetch: int) -> None:
    app = make_app(url)
    app.store.jobs_pending_count()  # connect before the clock starts
    worker = Worker(app, threads=threads, prefetch=prefetch, polling_interval=0.01)
    _common.worker_ready_and_wait()
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    while app.store.jobs_any_pending():
        time.sleep(0.02)
    finished = time.monotonic()
    worker.stop()
    runner.join()
    _common.worker_report(worker.jobs_done, finished)


def main() -> None:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--threads", type=int, default=10, help="threads per worker")

    args = _common.parse_args((__doc__ or SYSTEM).splitlines()[0], extra=extra)
    if args.worker is not None:
        opts = _common.worker_options(args.worker)
        _drain_worker(opts["url"], int(opts["threads"]), int(opts["prefetch"]))
        return
    print(json.dumps(run(args.dsn, args.jobs, args.workers, threads=args.threads)))


if __name__ == "__main__":
    main()
