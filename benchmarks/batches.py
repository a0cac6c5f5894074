"""What batch bookkeeping costs per job: a drain of no-op jobs with no batch, all in
one batch (every completion updates the one batch row), and in batches of 100; and
the enqueue of each (enqueue_many).

    python benchmarks/batches.py --database postgresql://postgres@127.0.0.1/stalwart_bench
    python benchmarks/batches.py --database ... --plain-only   # also runs on a Stalwart
                                                               # without workflows

Every figure is the median of ``--repeat`` runs, taken round-robin (each mode once,
then each again) so a slow moment of the machine falls on all of them alike.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import threading
import time
from typing import Any

import stalwart
from stalwart.config import Config
from stalwart.processes import Worker


def make_app(url: str) -> stalwart.App:
    app = stalwart.App(config=Config(database_url=url, source="benchmark"))

    @app.task(name="bench.noop")
    def noop(n: int) -> None:
        return None

    @app.task(name="bench.done")
    def done(batch_id: int) -> None:
        return None

    return app


def enqueue(app: stalwart.App, count: int, mode: str) -> float:
    """Seconds to enqueue ``count`` jobs in ``mode``."""
    calls = [((n,), {}) for n in range(count)]
    started = time.perf_counter()
    if mode == "plain":
        app.enqueue_many("bench.noop", calls)
    else:
        size = count if mode == "one_batch" else 100
        done = app.tasks["bench.done"]
        for start in range(0, count, size):
            with app.batch(on_finish=done.prepare()):  # type: ignore[attr-defined]
                app.enqueue_many("bench.noop", calls[start : start + size])
    return time.perf_counter() - started


def _worker_main(url: str, threads: int, prefetch: int, go: Any, done: Any) -> None:
    app = make_app(url)
    app.store.jobs_any_pending()  # connected before the clock starts
    worker = Worker(app, threads=threads, prefetch=prefetch, polling_interval=0.01)
    go.wait()
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    while app.store.jobs_any_pending():
        time.sleep(0.01)
    done.put(time.monotonic())
    worker.stop()
    runner.join()


def run(
    url: str, mode: str, count: int, workers: int, threads: int, prefetch: int
) -> dict[str, float]:
    app = make_app(url)
    app.store.tables_reset()
    enqueue_s = enqueue(app, count, mode)
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
    drain_s = finished - started
    return {
        "enqueue_us_per_job": 1e6 * enqueue_s / count,
        "drain_per_s": count / drain_s,
        "drain_us_per_job": 1e6 * drain_s / count,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--prefetch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--plain-only", action="store_true", help="No batches (any version).")
    args = parser.parse_args()
    make_app(args.database).migrate()
    modes = ["plain"] if args.plain_only else ["plain", "one_batch", "batches_of_100"]
    runs: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for _ in range(args.repeat):
        for mode in modes:
            runs[mode].append(
                run(args.database, mode, args.jobs, args.workers, args.threads, args.prefetch)
            )
    report: dict[str, Any] = {
        "database": args.database.split("://")[0],
        "jobs": args.jobs,
        "workers": args.workers,
        "threads": args.threads,
    }
    for mode, rs in runs.items():
        report[mode] = {k: round(statistics.median(r[k] for r in rs), 1) for k in rs[0]}
        report[mode]["drain_per_s_runs"] = [round(r["drain_per_s"]) for r in rs]
    if not args.plain_only:
        base = report["plain"]
        for mode in modes[1:]:
            report[mode]["extra_drain_us_per_job"] = round(
                report[mode]["drain_us_per_job"] - base["drain_us_per_job"], 1
            )
            report[mode]["extra_enqueue_us_per_job"] = round(
                report[mode]["enqueue_us_per_job"] - base["enqueue_us_per_job"], 1
            )
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
