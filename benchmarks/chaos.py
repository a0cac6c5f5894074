"""Chaos run: jobs survive SIGKILLed workers and a PostgreSQL restart.

5,000 jobs that each record their start and end in a table; 2 supervisors (each 2
workers x 5 threads, and a dispatcher); a random worker SIGKILLed every second for 60 s;
PostgreSQL restarted once, at 20 s. Then every job must have ended finished, or failed
with a crash reason; none missing; and every job that ran more than once must have had
its earlier run on a worker that was killed (before its result was written).

    python benchmarks/chaos.py [--jobs 5000] [--seconds 60] [--dsn postgresql://...]

Needs root (it restarts the local PostgreSQL cluster with pg_ctlcluster).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import stalwart  # noqa: E402
from stalwart.config import Config  # noqa: E402
from stalwart.errors import DatabaseUnavailable  # noqa: E402


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except FileNotFoundError:
        return ""


def restart_postgres() -> None:
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/stalwart_bench")
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--restart-at", type=float, default=20.0)
    args = parser.parse_args()

    from benchmarks.apps.chaosapp import app as chaosapp

    app = stalwart.App(config=Config(database_url=args.dsn, source="chaos"))
    app.tasks.update(chaosapp.tasks)
    app.migrate()
    app.store.tables_reset()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS chaos_executions")
        conn.execute(
            "CREATE TABLE chaos_executions (id bigserial primary key, job_id bigint,"
            " pid int, event text, at timestamptz default now())"
        )
    ids = app.enqueue_many("chaos.work", [((n,), {}) for n in range(args.jobs)]).ids

    work = Path(tempfile.mkdtemp(prefix="stalwart-chaos-"))
    (work / "stalwart.toml").write_text(
        "\n".join(
            [
                'app = "benchmarks.apps.chaosapp:app"',
                f"database_url = {json.dumps(args.dsn)}",
                "heartbeat_interval = 1",
                "alive_threshold = 10",
                "shutdown_timeout = 5",
                "max_crashes = 5",
                "[[workers]]",
                'queues = ["*"]',
                "threads = 5",
                "processes = 2",
                "polling_interval = 0.05",
                "[[dispatchers]]",
                "polling_interval = 0.2",
            ]
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHAOS_DSN": args.dsn}
    logs = [open(work / f"supervisor{i}.log", "w") for i in range(2)]  # noqa: SIM115
    sups = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from stalwart.cli import main; main()",
                "--log-level",
                "WARNING",
                "start",
            ],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    killed: set[int] = set()
    restarted = False
    started = time.monotonic()
    rng = random.Random(7)
    try:
        while time.monotonic() - started < args.seconds:
            time.sleep(1)
            try:
                worker_pids = {r.pid for r in app.store.processes_list() if r.kind == "worker"}
            except DatabaseUnavailable:  # PostgreSQL is restarting
                worker_pids = set()
            candidates = [c for s in sups for c in children(s.pid) if c in worker_pids]
            if candidates:
                victim = rng.choice(candidates)
                os.kill(victim, signal.SIGKILL)
                killed.add(victim)
            if not restarted and time.monotonic() - started >= args.restart_at:
                print(f"[{time.monotonic() - started:5.1f} s] restarting PostgreSQL", flush=True)
                restart_postgres()
                restarted = True
        print(
            f"[{time.monotonic() - started:5.1f} s] chaos over; letting the fleet finish",
            flush=True,
        )
        deadline = time.monotonic() + 300
        while app.store.jobs_any_pending() and time.monotonic() < deadline:
            time.sleep(1)
    finally:
        for s in sups:
            s.send_signal(signal.SIGTERM)
        for s in sups:
            s.wait(60)
    elapsed = time.monotonic() - started

    results = {r.id: r for r in app.store.jobs_get(ids)}
    statuses = Counter(r.status for r in results.values())
    missing = [i for i in ids if i not in results]
    runs: dict[int, list[tuple[int, str]]] = defaultdict(list)
    with psycopg.connect(args.dsn) as conn:
        for job_id, pid, event in conn.execute(
            "SELECT job_id, pid, event FROM chaos_executions ORDER BY id"
        ):
            runs[job_id].append((pid, event))
    starts = {j: [pid for pid, e in r if e == "start"] for j, r in runs.items()}
    duplicated = {j: s for j, s in starts.items() if len(s) > 1}
    unexplained = {j: s for j, s in duplicated.items() if not all(pid in killed for pid in s[:-1])}
    failed = [r for r in results.values() if r.status == "FAILED"]
    failed_without_crash = [
        r.id
        for r in failed
        if not r.errors or "Process" not in json.loads(r.errors)[-1].get("class", "")
    ]
    never_ran_finished = [
        j for j, r in results.items() if r.status == "SUCCESSFUL" and j not in starts
    ]
    report = {
        "jobs": len(ids),
        "seconds": round(elapsed, 1),
        "workers_killed": len(killed),
        "postgres_restarted": restarted,
        "statuses": dict(statuses),
        "missing": len(missing),
        "executions": sum(len(s) for s in starts.values()),
        "jobs_run_more_than_once": len(duplicated),
        "duplicates_not_explained_by_a_kill": len(unexplained),
        "failed_without_crash_reason": len(failed_without_crash),
        "successful_without_a_recorded_run": len(never_ran_finished),
        "crashes_recorded": sum(r.crashes for r in results.values()),
    }
    print(json.dumps(report, indent=2))
    ok = (
        not missing
        and not unexplained
        and not failed_without_crash
        and not never_ran_finished
        and set(statuses) <= {"SUCCESSFUL", "FAILED"}
    )
    print("CHAOS RUN:", "PASSED" if ok else "FAILED", f"(logs in {work})")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
