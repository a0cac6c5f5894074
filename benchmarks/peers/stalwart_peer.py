"""Stalwart itself, measured by the same harness as its peers.

Enqueue: ``app.enqueue_many`` of N no-op jobs (multi-row INSERTs; COPY on PostgreSQL) in
chunks of 10,000, in the calling process, after the tables are emptied.
Drain: W worker processes, each one `stalwart.processes.Worker` with ``--threads`` threads
and prefetch 200, polling every 10 ms, released together; each reports when the queue
became empty.
Pickup latency: one idle worker with the same settings, one ``app.enqueue`` at a time.

``--dsn`` takes a PostgreSQL DSN or any Stalwart database URL (``sqlite:////tmp/x.db``,
``mysql://...``): the same script measures Stalwart on every database.
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
DEFAULT_THREADS = 10
DEFAULT_PREFETCH = 200
POLLING_INTERVAL = 0.01


def make_app(url: str) -> stalwart.App:
    app = stalwart.App(config=Config(database_url=url, source="benchmark"))
    app.task(name="noop")(noop)
    app.task(name="record_start")(_common.record_start)
    return app


def noop(n: int) -> None:
    return None


def to_url(dsn: str) -> str:
    """Peers speak plain PostgreSQL URLs; Stalwart takes them as they are, and other
    URLs (sqlite://, mysql://) pass through."""
    return dsn


def database_name(url: str) -> str:
    scheme = url.split(":", 1)[0].split("+", 1)[0]
    return {"postgresql": "PostgreSQL", "postgres": "PostgreSQL", "sqlite": "SQLite"}.get(
        scheme, "MySQL/MariaDB" if scheme in ("mysql", "mariadb") else scheme
    )


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


def latency(url: str, threads: int, prefetch: int) -> _common.Latency:
    app = make_app(url)
    app.store.tables_reset()
    opts = {"url": url, "threads": threads, "prefetch": prefetch}
    try:
        with _common.LatencyProbe(__file__, opts) as probe:
            app.store.jobs_any_pending()  # connect before the first job
            for n in range(probe.jobs):
                time.sleep(probe.until(n))
                app.enqueue("record_start", (n,))
                probe.committed(n)
            return probe.result()
    finally:
        app.close()


def run(
    dsn: str,
    jobs: int,
    workers: int,
    *,
    threads: int = DEFAULT_THREADS,
    prefetch: int = DEFAULT_PREFETCH,
    measure_latency: bool = True,
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
    pickup = latency(url, threads, prefetch) if measure_latency else None
    return _common.result(
        SYSTEM, jobs, enqueue_s, drain, database=database_name(url), latency=pickup
    )


def _drain_worker(url: str, threads: int, prefetch: int) -> None:
    app = make_app(url)
    app.store.jobs_pending_count()  # connect before the clock starts
    worker = Worker(app, threads=threads, prefetch=prefetch, polling_interval=POLLING_INTERVAL)
    _common.worker_ready_and_wait()
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    while app.store.jobs_any_pending():
        time.sleep(0.02)
    finished = time.monotonic()
    worker.stop()
    runner.join()
    _common.worker_report(worker.jobs_done, finished)


def _latency_worker(url: str, threads: int, prefetch: int, path: str) -> None:
    _common.open_start_log(path)
    app = make_app(url)
    app.store.jobs_pending_count()  # connect before the first job
    worker = Worker(app, threads=threads, prefetch=prefetch, polling_interval=POLLING_INTERVAL)
    _common.worker_ready_and_wait()
    # A graceful stop, so the worker deregisters from stalwart_processes.
    _common.exit_when_parent_lets_go(worker.stop)
    worker.run()


def main() -> None:
    def extra(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--threads", type=int, default=DEFAULT_THREADS, help="threads per worker"
        )
        parser.add_argument("--prefetch", type=int, default=DEFAULT_PREFETCH)

    args = _common.parse_args(
        (__doc__ or SYSTEM).splitlines()[0],
        extra=extra,
        dsn_help="PostgreSQL DSN or Stalwart database URL",
    )
    if args.worker is not None:
        opts = _common.worker_options(args.worker)
        if "latency_file" in opts:
            _latency_worker(
                opts["url"], int(opts["threads"]), int(opts["prefetch"]), opts["latency_file"]
            )
        else:
            _drain_worker(opts["url"], int(opts["threads"]), int(opts["prefetch"]))
        return
    out = run(
        args.dsn,
        args.jobs,
        args.workers,
        threads=args.threads,
        prefetch=args.prefetch,
        measure_latency=args.latency,
    )
    print(json.dumps(out))


if __name__ == "__main__":
    main()
