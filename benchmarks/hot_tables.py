"""What a drain writes and leaves behind on PostgreSQL: WAL bytes per job (enqueue, and
enqueue + claim + run + completion), and the hot tables' live and dead rows and size
right after the drain (docs/scaling.md).

    python benchmarks/hot_tables.py --database postgresql://postgres@127.0.0.1/stalwart_bench

WAL is `pg_current_wal_lsn()` before and after (the whole server's WAL: run it on a
quiet server; full-page images after a checkpoint make it vary).
"""

from __future__ import annotations

import argparse
import json
import time

from sqlalchemy import text
from throughput import drain_rate, make_app

TABLES = (
    "stalwart_jobs",
    "stalwart_ready_executions",
    "stalwart_claimed_executions",
    "stalwart_scheduled_executions",
    "stalwart_processes",
)


def lsn(url: str) -> int:
    app = make_app(url)
    with app.store.engine.connect() as conn:
        value = conn.execute(
            text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")
        ).scalar_one()
    app.close()
    return int(value)


def tables(url: str) -> dict[str, dict[str, int]]:
    app = make_app(url)
    out = {}
    with app.store.engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_force_next_flush()"))
        for t in TABLES:
            row = conn.execute(
                text(
                    "SELECT n_live_tup, n_dead_tup, pg_total_relation_size(relid)"
                    " FROM pg_stat_user_tables WHERE relname = :t"
                ),
                {"t": t},
            ).one()
            out[t] = {"live": int(row[0]), "dead": int(row[1]), "bytes": int(row[2])}
    app.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--database", required=True)
    parser.add_argument("--jobs", type=int, default=50_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=10)
    parser.add_argument("--prefetch", type=int, default=200)
    args = parser.parse_args()
    app = make_app(args.database)
    app.migrate()
    app.store.tables_reset()
    before = lsn(args.database)
    app.enqueue_many("bench.noop", [((n,), {}) for n in range(args.jobs)])
    enqueued = lsn(args.database)
    app.store.tables_reset()
    app.close()
    time.sleep(1)
    start = lsn(args.database)
    rate = drain_rate(
        args.database, args.jobs, args.workers, args.threads, args.prefetch, reset=False
    )
    end = lsn(args.database)
    result = {
        "jobs": args.jobs,
        "drain_jobs_per_s": round(rate),
        "wal_bytes_per_job_enqueue": round((enqueued - before) / args.jobs),
        "wal_bytes_per_job_enqueue_and_drain": round((end - start) / args.jobs),
        "tables_after_drain": tables(args.database),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
