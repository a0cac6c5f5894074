"""Stalwart's own throughput on one database: enqueue (single and enqueue_many) and
drain (no-op jobs: claim -> run -> record), with W worker processes.

    python benchmarks/throughput.py --database postgresql://postgres@127.0.0.1/stalwart_bench
    python benchmarks/throughput.py --database sqlite:////tmp/stalwart-bench.db

Side-by-side numbers against other systems: benchmarks/peers/.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import threading
import time

import stalwart
from stalwart.config import Config
from stalwart.processes import Worker


def make_app(url: str) -> stalwart.App:
    app = stalwart.App(config=Config(database_url=url, source="benchmark"))

    @app.task(name="bench.noop")
    def noop(n: int) -> None:
        return None

    return app


def single_enqueue_rate(url: str, count: int) -> float:
    app = make_app(url)
    app.store.tables_reset()
    started = time.perf_counter()
    for n in range(count):
        app.enqueue("bench.noop", (n,))
    rate = count / (time.perf_counter() - started)
    app.close()
    return rate


def enqueue_many_rate(url: str, count: int) -> float:
    app = make_app(url)
    app.store.tables_reset()
    calls = [((n,), {}) for n in range(count)]
    started = time.perf_counter()
    app.enqueue_many("bench.noop", calls)
    rate = count / (time.perf_counter() - started)
    app.close()
    return rate


def _worker_main(url: str, threads: int, prefetch: int, go: object, done: object) -> None:
    app = make_app(url)
    app.store.jobs_any_pending()  # connected before the clock starts
    worker = Worker(app, threads=threads, prefetch=prefetch, polling_interval=0.01)
    go.wait()  # type: ignore[attr-defined]
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    # Due work only: jobs scheduled for later (scale.py's million a year ahead) are not
    # this drain's.
    while app.store.jobs_any_due():
        time.sleep(0.01)
    done.put(time.monotonic())  # type: ignore[attr-defined]
    worker.stop()
    runner.join()


def drain_rate(
    url: str, count: int, workers: int, threads: int, prefetch: int, *, reset: bool = True
) -> float:
    """Enqueue ``count`` no-op jobs, then time W worker processes draining them (with
    ``reset``, on empty tables; without, on top of whatever the tables hold)."""
    app = make_app(url)
    if reset:
        app.store.tables_reset()
    app.enqueue_many("bench.noop", [((n,), {}) for n in range(count)])
    app.close()
    ctx = multiprocessing.get_context("fork")
    go, done = ctx.Event(), ctx.Queue()
    procs = [
        ctx.Process(target=_worker_main, args=(url, threads, prefetch, go, done))
        for _ in range(workers)
    ]
    for p in procs:
        p.start()
    time.sleep(1.0)  # let every worker import and connect
    started = time.monotonic()
    go.set()
    finished = max(done.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(60)
    return count / (finished - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database", required=True, help="database URL")
    parser.add_argument("--single", type=int, default=2000, help="jobs enqueued one by one")
    parser.add_argument("--many", type=int, default=100_000, help="jobs for enqueue_many")
    parser.add_argument("--drain", type=int, default=20_000, help="jobs to drain")
    parser.add_argument("--workers", type=int, default=2, help="worker processes")
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--prefetch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    args = parser.parse_args()
    make_app(args.database).migrate()
    runs: dict[str, list[float]] = {"enqueue_single": [], "enqueue_many": [], "drain": []}
    for _ in range(args.repeat):
        runs["enqueue_single"].append(single_enqueue_rate(args.database, args.single))
        runs["enqueue_many"].append(enqueue_many_rate(args.database, args.many))
        runs["drain"].append(
            drain_rate(args.database, args.drain, args.workers, args.threads, args.prefetch)
        )
    report = {
        "database": args.database.split("://")[0],
        "workers": args.workers,
        "threads": args.threads,
        "prefetch": args.prefetch,
        **{f"{k}_per_s": round(statistics.median(v)) for k, v in runs.items()},
        "runs": {k: [round(x) for x in v] for k, v in runs.items()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
