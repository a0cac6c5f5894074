"""How fast is each dashboard page with 1,000,000 jobs in the table?

    python benchmarks/dashboard_pages.py --database postgresql://postgres@127.0.0.1/stalwart_dashboard_bench

Loads ``--jobs`` jobs with ``app.enqueue_many`` (COPY on PostgreSQL), then moves them
into a realistic mix with set-based SQL: 90% finished over the last day (so the last
hour alone holds tens of thousands), 5% failed, 2% scheduled, a few running and
blocked, the rest ready. Then each page is requested ``--repeat`` times through the
real ASGI stack (auth, rendering, compression) and the median is reported; the goal is
under 200 ms each. ``--explain`` prints the PostgreSQL plan of every statement a page
runs, flagging sequential scans of big tables. The database is emptied first.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

from sqlalchemy import event, text
from starlette.testclient import TestClient

import stalwart
from stalwart.config import Config
from stalwart.web import BasicAuth, dashboard

TASKS = ["mail.deliver", "billing.charge", "reports.build", "search.reindex"]
QUEUES = ["mail", "default", "reports", "search"]


def load(app: stalwart.App, jobs: int, chunk: int = 50_000) -> None:
    tasks = []
    for name, queue in zip(TASKS, QUEUES, strict=True):

        def fn(account_id: int, token: str = "", **_: Any) -> None: ...

        tasks.append(app.task(name=name, queue_name=queue)(fn))
    t0 = time.perf_counter()
    done = 0
    while done < jobs:
        n = min(chunk, jobs - done)
        task = tasks[(done // chunk) % len(tasks)]
        calls = [((done + i,), {"token": "secret", "note": "x" * 40}) for i in range(n)]
        app.enqueue_many(task, calls)
        done += n
        print(f"\r  enqueued {done:,}", end="", file=sys.stderr, flush=True)
    print(f"\n  enqueue: {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def shape(app: stalwart.App, jobs: int) -> None:
    """Finished, failed, scheduled, running and blocked jobs, set-based."""
    engine = app.store.engine
    pg = engine.dialect.name == "postgresql"
    # Spread finished times over the last day; latency of 0-2 s, run time 0-0.5 s.
    rnd = "random()" if pg else "RAND()"
    now = "(now() AT TIME ZONE 'UTC')" if pg else "UTC_TIMESTAMP(6)"

    def interval(expr: str) -> str:
        if pg:
            return f"make_interval(secs => {expr})"
        return f"INTERVAL ({expr}) * 1000000 MICROSECOND"

    lat = interval(f"0.5 + 2 * {rnd}")
    finished_upto = int(jobs * 0.90)
    failed_upto = int(jobs * 0.95)
    scheduled_upto = int(jobs * 0.97)
    steps = [
        (
            "finish 90%",
            f"UPDATE stalwart_jobs SET finished_at = {now} - {interval(f'86400 * {rnd}')},"
            " attempts = 1 WHERE id <= :a",
            {"a": finished_upto},
        ),
        (
            "started/scheduled times",
            f"UPDATE stalwart_jobs SET started_at = finished_at - {interval(f'0.5 * {rnd}')},"
            f" scheduled_at = finished_at - {lat}, enqueued_at = finished_at - {lat}"
            " WHERE id <= :a",
            {"a": finished_upto},
        ),
        (
            "ready rows of finished",
            "DELETE FROM stalwart_ready_executions WHERE job_id <= :a",
            {"a": finished_upto},
        ),
        (
            "fail 5%",
            "INSERT INTO stalwart_failed_executions (job_id, queue_name, error_class, error,"
            " created_at) SELECT j.id, j.queue_name,"
            " CASE WHEN MOD(j.id, 3) = 0 THEN 'TimeoutError' ELSE 'ValueError' END,"
            ' \'{"class": "ValueError", "message": "bad input", "traceback": ""}\','
            f" {now} - {interval(f'3600 * {rnd}')}"
            " FROM stalwart_jobs j WHERE j.id > :a AND j.id <= :b",
            {"a": finished_upto, "b": failed_upto},
        ),
        (
            "errors of failed",
            'UPDATE stalwart_jobs SET attempts = 3, errors = \'[{"class": "ValueError",'
            ' "message": "bad input", "traceback": "Traceback...", "at":'
            ' "2026-01-01T00:00:00"}]\' WHERE id > :a AND id <= :b',
            {"a": finished_upto, "b": failed_upto},
        ),
        (
            "ready rows of failed",
            "DELETE FROM stalwart_ready_executions WHERE job_id > :a AND job_id <= :b",
            {"a": finished_upto, "b": failed_upto},
        ),
        (
            "schedule 2%",
            "INSERT INTO stalwart_scheduled_executions (job_id, queue_name, priority,"
            f" scheduled_at, created_at) SELECT j.id, j.queue_name, j.priority,"
            f" {now} + {interval(f'3600 * {rnd}')}, {now}"
            " FROM stalwart_jobs j WHERE j.id > :a AND j.id <= :b",
            {"a": failed_upto, "b": scheduled_upto},
        ),
        (
            "ready rows of scheduled",
            "DELETE FROM stalwart_ready_executions WHERE job_id > :a AND job_id <= :b",
            {"a": failed_upto, "b": scheduled_upto},
        ),
        (
            "block 1,000",
            "INSERT INTO stalwart_blocked_executions (job_id, queue_name, priority,"
            f" concurrency_key, expires_at, created_at) SELECT job_id, queue_name, priority,"
            f" 'account:7', {now} + {interval('300')}, {now} FROM stalwart_ready_executions"
            " WHERE job_id > :b AND job_id <= :c",
            {"b": scheduled_upto, "c": scheduled_upto + 1000},
        ),
        (
            "ready rows of blocked",
            "DELETE FROM stalwart_ready_executions WHERE job_id > :b AND job_id <= :c",
            {"b": scheduled_upto, "c": scheduled_upto + 1000},
        ),
        (
            "claim 50",
            f"INSERT INTO stalwart_claimed_executions (job_id, process_id, created_at)"
            f" SELECT job_id, NULL, {now} FROM stalwart_ready_executions"
            " WHERE job_id > :c AND job_id <= :d",
            {"c": scheduled_upto + 1000, "d": scheduled_upto + 1050},
        ),
        (
            "ready rows of claimed",
            "DELETE FROM stalwart_ready_executions WHERE job_id > :c AND job_id <= :d",
            {"c": scheduled_upto + 1000, "d": scheduled_upto + 1050},
        ),
    ]
    first = engine.connect().execute(text("SELECT min(id) FROM stalwart_jobs")).scalar() or 1
    offset = int(first) - 1
    for label, sql, params in steps:
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(text(sql), {k: v + offset for k, v in params.items()})
        print(f"  {label}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    with engine.connect() as conn:
        conn = conn.execution_options(isolation_level="AUTOCOMMIT")
        for t in (
            "stalwart_jobs",
            "stalwart_ready_executions",
            "stalwart_failed_executions",
            "stalwart_scheduled_executions",
            "stalwart_blocked_executions",
            "stalwart_claimed_executions",
        ):
            conn.execute(text(f"VACUUM ANALYZE {t}" if pg else f"ANALYZE TABLE {t}"))


def pages(app: stalwart.App) -> dict[str, str]:
    store = app.store
    with store.engine.connect() as conn:
        failed = conn.execute(text("SELECT max(job_id) FROM stalwart_failed_executions")).scalar()
        ready = conn.execute(text("SELECT max(job_id) FROM stalwart_ready_executions")).scalar()
        blocked = conn.execute(text("SELECT max(job_id) FROM stalwart_blocked_executions")).scalar()
        finished = conn.execute(
            text(
                "SELECT id FROM stalwart_jobs WHERE finished_at IS NOT NULL"
                " ORDER BY finished_at DESC LIMIT 1"
            )
        ).scalar()
    return {
        "overview": "/",
        "jobs failed": "/jobs?status=failed",
        "jobs failed, error class": "/jobs?status=failed&error_class=TimeoutError",
        "jobs failed, queue + task": "/jobs?status=failed&queue=mail&task=mail.deliver",
        "jobs ready": "/jobs?status=ready",
        "jobs ready, queue": "/jobs?status=ready&queue=search",
        "jobs scheduled": "/jobs?status=scheduled",
        "jobs running": "/jobs?status=running",
        "jobs blocked": "/jobs?status=blocked",
        "jobs finished": "/jobs?status=finished",
        "jobs finished, last 1h": "/jobs?status=finished&range=1h",
        "jobs finished, task (rare)": "/jobs?status=finished&task=nope.never",
        "search by id": f"/jobs?id={finished}",
        "job failed": f"/jobs/{failed}",
        "job ready (why panel)": f"/jobs/{ready}",
        "job blocked (why panel)": f"/jobs/{blocked}",
        "job finished": f"/jobs/{finished}",
        "processes": "/processes",
        "recurring": "/recurring",
        "audit log": "/audit",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--database", default="postgresql://postgres@127.0.0.1/stalwart_dashboard_bench"
    )
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-load", action="store_true", help="Reuse the loaded database.")
    parser.add_argument("--explain", action="store_true", help="Print each statement's plan.")
    opts = parser.parse_args()

    app = stalwart.App(config=Config(database_url=opts.database, source="benchmark"))
    app.migrate()
    if not opts.skip_load:
        app.store.tables_reset()
        print(f"loading {opts.jobs:,} jobs into {app.store.engine.url!r}", file=sys.stderr)
        load(app, opts.jobs)
        shape(app, opts.jobs)
    web = dashboard(app, auth=BasicAuth(admins={"bench": "bench"}))
    client = TestClient(web, headers={"accept-encoding": "gzip, br"})
    client.auth = ("bench", "bench")
    statements: list[tuple[str, Any]] = []

    @event.listens_for(app.store.engine, "before_cursor_execute")
    def record(conn: Any, cursor: Any, statement: str, params: Any, ctx: Any, many: bool) -> None:
        statements.append((statement, params))

    print(f"\n{'page':32} {'median ms':>10} {'max ms':>8}  status")
    worst = 0.0
    for label, url in pages(app).items():
        client.get(url)  # warm-up: caches, templates
        statements.clear()
        times = []
        status = 0
        for _ in range(opts.repeat):
            t0 = time.perf_counter()
            r = client.get(url, follow_redirects=False)
            times.append((time.perf_counter() - t0) * 1000)
            status = r.status_code
        med = statistics.median(times)
        worst = max(worst, med)
        flag = "" if med < 200 else "  <-- over 200 ms"
        print(f"{label:32} {med:10.1f} {max(times):8.1f}  {status}{flag}")
        if opts.explain and app.store.engine.dialect.name == "postgresql":
            explain(app, statements[: len(statements) // opts.repeat])
    print(f"\nslowest page median: {worst:.1f} ms (goal: under 200 ms)")


def explain(app: stalwart.App, statements: list[tuple[str, Any]]) -> None:
    seen = set()
    with app.store.engine.connect() as conn:
        for sql, params in statements:
            if not sql.lstrip().upper().startswith(("SELECT", "WITH")) or sql in seen:
                continue
            seen.add(sql)
            plan = conn.exec_driver_sql("EXPLAIN ANALYZE " + sql, params).scalars().all()
            big_seq = [line for line in plan if "Seq Scan on stalwart_jobs" in line]
            head = " ".join(sql.split())[:140]
            print(f"    {'SEQ SCAN OF JOBS ' if big_seq else ''}{head}")
            for line in plan:
                if "Scan" in line or "Execution Time" in line:
                    print(f"      {line.strip()}")


if __name__ == "__main__":
    main()
