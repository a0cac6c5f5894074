"""Soak: a steady enqueue rate for 10 minutes, with a long transaction held open
elsewhere for 5 of them (it holds back vacuum: dead rows pile up in the queue tables).
Samples the backlog and the dead tuples of the hot tables every 10 s.

    python benchmarks/soak.py [--minutes 10] [--rate 300] [--hold-from 2.5] [--hold 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psycopg
from throughput import make_app

HOT = ("stalwart_ready_executions", "stalwart_claimed_executions", "stalwart_jobs")


def sample(dsn: str) -> dict[str, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        out = {}
        for table in HOT:
            row = conn.execute(
                "SELECT n_dead_tup, n_live_tup, autovacuum_count FROM pg_stat_user_tables"
                " WHERE relname = %s",
                (table,),
            ).fetchone()
            short = table.removeprefix("stalwart_").removesuffix("_executions")
            out[f"{short}_dead"] = int(row[0]) if row else -1
            if short != "jobs":
                out[f"{short}_autovacuums"] = int(row[2]) if row else -1
        out["ready_backlog"] = int(
            conn.execute("SELECT count(*) FROM stalwart_ready_executions").fetchone()[0]  # type: ignore[index]
        )
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1/stalwart_bench")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--rate", type=int, default=300, help="jobs enqueued per second")
    parser.add_argument("--hold-from", type=float, default=2.5, help="minute the long txn opens")
    parser.add_argument("--hold", type=float, default=5, help="minutes it stays open")
    args = parser.parse_args()
    app = make_app(args.dsn)
    app.migrate()
    app.store.tables_reset()
    work = Path(tempfile.mkdtemp(prefix="stalwart-soak-"))
    (work / "stalwart.toml").write_text(
        f'database_url = "{args.dsn}"\n[[workers]]\nqueues = ["*"]\nthreads = 5\n'
        "processes = 2\npolling_interval = 0.1\n[[dispatchers]]\npolling_interval = 1\n"
    )
    (work / "soakapp.py").write_text(
        "import stalwart\napp = stalwart.App()\n"
        "@app.task(name='bench.noop')\ndef noop(n: int) -> None:\n    return None\n"
    )
    env = {**os.environ, "PYTHONPATH": str(work), "STALWART_APP": "soakapp:app"}
    log = open(work / "supervisor.log", "w")  # noqa: SIM115
    sup = subprocess.Popen(
        [sys.executable, "-c", "from stalwart.cli import main; main()", "start"],
        cwd=work,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    stop = threading.Event()

    def enqueue_steadily() -> None:
        n, started = 0, time.monotonic()
        while not stop.is_set():
            due = started + n / args.rate
            if (delay := due - time.monotonic()) > 0:
                time.sleep(delay)
            app.enqueue("bench.noop", (n,))
            n += 1

    producer = threading.Thread(target=enqueue_steadily, daemon=True)
    producer.start()
    holder: psycopg.Connection[tuple[object, ...]] | None = None
    samples = []
    started = time.monotonic()
    try:
        while (elapsed := time.monotonic() - started) < args.minutes * 60:
            minute = elapsed / 60
            if holder is None and args.hold_from <= minute < args.hold_from + args.hold:
                holder = psycopg.connect(args.dsn)
                holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
                holder.execute("SELECT count(*) FROM stalwart_jobs")  # takes the snapshot
            elif holder is not None and minute >= args.hold_from + args.hold:
                holder.rollback()
                holder.close()
                holder = None
            row = {"t_s": round(elapsed), "long_txn_open": holder is not None, **sample(args.dsn)}
            samples.append(row)
            print(json.dumps(row), flush=True)
            time.sleep(10)
    finally:
        stop.set()
        producer.join()
        if holder is not None:
            holder.close()
        sup.send_signal(signal.SIGTERM)
        sup.wait(60)
    worst = max(s["ready_backlog"] for s in samples)
    print(
        json.dumps(
            {
                "minutes": args.minutes,
                "rate_per_s": args.rate,
                "max_ready_backlog": worst,
                "max_ready_dead": max(s["ready_dead"] for s in samples),
                "max_claimed_dead": max(s["claimed_dead"] for s in samples),
                "final": samples[-1],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
