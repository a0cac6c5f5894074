"""What an idle fleet costs its database: statements per second sent by 1, 10 and 100
idle worker processes (threads = 1), and how fast a job is picked up after idling.

    python benchmarks/idle_fleet.py --databases postgresql,mariadb,sqlite --workers 1,10,100

Each fleet is made of real `stalwart start` supervisors standing for hosts, up to
``--per-host`` worker processes each, no dispatcher and no scheduler (the worker's cost
alone; `--host-overhead` measures one default host: supervisor, worker, dispatcher,
scheduler). Once every process is registered and has idled ``--settle`` seconds, the
statements each process sent through SQLAlchemy are counted over ``--window`` seconds
(every process writes its count to a file: benchmarks/apps/idleapp.py); on PostgreSQL
the server's transaction count (pg_stat_database xact_commit + xact_rollback of the
database: pg_stat_statements is not installed here) is read too, on MariaDB the server's
`Questions` (server-wide: other users of a shared server count too). Then
``--pickups`` jobs are enqueued one at a time, ``--gap`` seconds apart, each after the
fleet idled, and the time from enqueue to the job's start is taken (p50, p99).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import create_engine, text

import stalwart
from stalwart.config import Config
from stalwart.percentiles import percentile

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from benchmarks.apps.idleapp import app as idleapp  # noqa: E402  (the task's name)

URLS = {
    "postgresql": "postgresql://postgres@127.0.0.1:5432/stalwart_bench",
    "mariadb": "mysql://root@127.0.0.1:3306/stalwart_bench",
    "sqlite": "sqlite:///{dir}/idle.db",
}


def write_config(path: Path, url: str, workers: int, host_services: bool) -> None:
    lines = [
        'app = "benchmarks.apps.idleapp:app"',
        f'database_url = "{url}"',
        'log_level = "WARNING"',
    ]
    if not host_services:
        lines += ["dispatchers = []", "scheduler = false"]
    lines += ["[[workers]]", 'queues = ["*"]', "threads = 1", f"processes = {workers}"]
    path.write_text("\n".join(lines) + "\n")


def server_count(url: str) -> float | None:
    engine = create_engine(url.replace("mysql://", "mysql+pymysql://"))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":
                return float(
                    conn.execute(
                        text(
                            "SELECT xact_commit + xact_rollback FROM pg_stat_database"
                            " WHERE datname = current_database()"
                        )
                    ).scalar_one()
                )
            if engine.dialect.name in ("mysql", "mariadb"):
                row = conn.execute(text("SHOW GLOBAL STATUS LIKE 'Questions'")).one()
                return float(row[1])
            return None
    finally:
        engine.dispose()


def client_count(count_dir: Path) -> int:
    total = 0
    for f in count_dir.iterdir():
        if f.suffix == ".tmp":
            continue
        try:
            total += int(f.read_text() or 0)
        except (OSError, ValueError):
            continue
    return total


def run_fleet(
    kind: str, workers: int, args: argparse.Namespace, host_services: bool = False
) -> dict[str, object]:
    work = Path(tempfile.mkdtemp(prefix="idle-fleet-"))
    url = URLS[kind].format(dir=work)
    counts = work / "counts"
    counts.mkdir()
    app = stalwart.App(config=Config(database_url=url, source="bench"))
    app.tasks.update(idleapp.tasks)
    app.migrate()
    app.store.tables_reset()
    hosts = max(1, math.ceil(workers / args.per_host))
    env = {**os.environ, "PYTHONPATH": str(REPO), "IDLE_COUNT_DIR": str(counts)}
    procs = []
    left = workers
    for h in range(hosts):
        here = min(args.per_host, left)
        left -= here
        d = work / f"host{h}"
        d.mkdir()
        write_config(d / "stalwart.toml", url, here, host_services)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", "from stalwart.cli import main; main()", "start"],
                cwd=d,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    expected = hosts + workers + (2 * hosts if host_services else 0)
    try:
        deadline = time.monotonic() + 300
        while len(app.store.processes_list()) < expected:
            if time.monotonic() > deadline:
                raise SystemExit(f"{kind}: only {len(app.store.processes_list())} registered")
            time.sleep(0.5)
        time.sleep(args.settle)
        c0, s0, t0 = client_count(counts), server_count(url), time.monotonic()
        time.sleep(args.window)
        c1, s1, t1 = client_count(counts), server_count(url), time.monotonic()
        took = t1 - t0
        # Pickup after idle: the fleet idles `gap` s, then one job; enqueue to start.
        pickups = []
        for _ in range(args.pickups):
            time.sleep(args.gap)
            before = time.time()
            job = app.enqueue("idle.started")
            while (result := app.get_result(job.id)).return_value is None:
                time.sleep(0.002)
            pickups.append((float(result.return_value) - before) * 1000)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(60)
        app.close()
    row: dict[str, object] = {
        "database": kind,
        "workers": workers,
        "hosts": hosts,
        "host_services": host_services,
        "statements_per_s": round((c1 - c0) / took, 2),
        "window_s": round(took, 1),
    }
    if s0 is not None and s1 is not None:
        # Our own two reads of the counter are in it: take them out.
        row["server_per_s"] = round((s1 - s0 - 1) / took, 2)
    if pickups:
        row["pickup_p50_ms"] = round(statistics.median(pickups), 1)
        row["pickup_p99_ms"] = round(percentile(sorted(pickups), 99) or 0.0, 1)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--databases", default="postgresql,mariadb,sqlite")
    parser.add_argument("--postgres-url", default=URLS["postgresql"])
    parser.add_argument("--mysql-url", default=URLS["mariadb"])
    parser.add_argument("--workers", default="1,10,100")
    parser.add_argument("--per-host", type=int, default=10)
    parser.add_argument("--settle", type=float, default=8.0)
    parser.add_argument("--window", type=float, default=30.0)
    parser.add_argument("--pickups", type=int, default=20)
    parser.add_argument("--gap", type=float, default=1.0)
    parser.add_argument("--host-overhead", action="store_true")
    args = parser.parse_args()
    URLS.update(postgresql=args.postgres_url, mariadb=args.mysql_url)
    for kind in args.databases.split(","):
        sizes = [int(n) for n in args.workers.split(",")]
        for n in sizes:
            print(json.dumps(run_fleet(kind, n, args)), flush=True)
        if args.host_overhead:
            print(json.dumps(run_fleet(kind, 1, args, host_services=True)), flush=True)


if __name__ == "__main__":
    main()
