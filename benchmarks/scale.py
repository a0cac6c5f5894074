"""Drain speed with big tables: 1,000,000 finished jobs kept and 1,000,000 scheduled for
the future, against the same drain on empty tables (goal: within 10 %).

    python benchmarks/scale.py --database postgresql://postgres@127.0.0.1/stalwart_bench

The execution tables the claim reads (ready, claimed) stay small whatever `jobs` and
`scheduled_executions` hold; this measures that it is so.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from datetime import timedelta

from sqlalchemy import text
from throughput import drain_rate, make_app


def load(url: str, finished: int, scheduled: int) -> dict[str, float]:
    app = make_app(url)
    app.migrate()
    app.store.tables_reset()
    started = time.perf_counter()
    chunk = 100_000
    later = app.tasks["bench.noop"].using(run_after=timedelta(days=365))
    for start in range(0, scheduled, chunk):
        app.enqueue_many(later, [((n,), {}) for n in range(start, min(scheduled, start + chunk))])
    for start in range(0, finished, chunk):
        app.enqueue_many("bench.noop", [((n,), {}) for n in range(min(chunk, finished - start))])
        # Finish them the way the completer would, in one set-based statement.
        with app.store.engine.begin() as conn:
            conn.execute(
                text(
                    "UPDATE stalwart_jobs SET finished_at = enqueued_at, started_at = enqueued_at,"
                    " attempts = 1 WHERE id IN (SELECT job_id FROM stalwart_ready_executions)"
                )
            )
            conn.execute(text("DELETE FROM stalwart_ready_executions"))
    loaded = time.perf_counter() - started
    with app.store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    app.close()
    return {"load_s": round(loaded, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1/stalwart_bench")
    parser.add_argument("--finished", type=int, default=1_000_000)
    parser.add_argument("--scheduled", type=int, default=1_000_000)
    parser.add_argument("--drain", type=int, default=20_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--prefetch", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    shape = (args.drain, args.workers, args.threads, args.prefetch)
    make_app(args.database).migrate()
    empty = []
    for _ in range(args.repeat):
        make_app(args.database).store.tables_reset()
        empty.append(drain_rate(args.database, *shape, reset=False))
    loaded = load(args.database, args.finished, args.scheduled)
    full = [drain_rate(args.database, *shape, reset=False) for _ in range(args.repeat)]
    report = {
        "jobs_drained": args.drain,
        "finished_kept": args.finished,
        "scheduled_future": args.scheduled,
        **loaded,
        "empty_drain_per_s": round(statistics.median(empty)),
        "big_tables_drain_per_s": round(statistics.median(full)),
        "ratio": round(statistics.median(full) / statistics.median(empty), 3),
        "runs": {"empty": [round(x) for x in empty], "big": [round(x) for x in full]},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
