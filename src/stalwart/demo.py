"""`stalwart demo`: a few hundred jobs of several kinds, worked live on SQLite.

The tasks here are registered on `demo_app(url)`; they sleep a little, compute,
fail on purpose, retry, run async, and carry captured context.
"""

from __future__ import annotations

import asyncio
import logging
import random
import threading
import time
from datetime import timedelta
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .app import App
from .config import Config
from .context import CurrentAttributes
from .policies import Retry
from .processes import Dispatcher, Worker
from .store.statuses import STATUSES


class DemoCurrent(CurrentAttributes):
    tenant: str | None = None


class FlakyError(RuntimeError):
    pass


def demo_app(url: str) -> App:
    app = App(config=Config(database_url=url, source="demo"))

    @app.task(name="demo.send_email", queue_name="mail", priority=10)
    def send_email(to: str, subject: str) -> dict[str, str]:
        time.sleep(random.uniform(0.002, 0.02))
        return {"to": to, "subject": subject, "tenant": str(DemoCurrent.tenant)}

    @app.task(name="demo.resize_image", queue_name="media")
    def resize_image(image_id: int, width: int) -> int:
        time.sleep(random.uniform(0.005, 0.03))
        return width * 3 // 4

    @app.task(name="demo.fetch_feed", queue_name="media")
    async def fetch_feed(feed_id: int) -> int:
        await asyncio.sleep(random.uniform(0.005, 0.03))
        return feed_id * 2

    @app.task(name="demo.flaky_sync", queue_name="default", retry=Retry(attempts=3, base=0.2))
    def flaky_sync(account_id: int) -> str:
        if random.random() < 0.5:
            raise FlakyError(f"partner API timed out for account {account_id}")
        return "synced"

    @app.task(name="demo.broken_report", queue_name="reports", priority=-10)
    def broken_report(report_id: int) -> None:
        raise ValueError(f"report {report_id} references a deleted column")

    return app


def enqueue_demo_jobs(app: App, count: int) -> int:
    per = max(1, count // 5)
    tasks = app.tasks
    DemoCurrent.tenant = "acme"
    app.enqueue_many(
        tasks["demo.send_email"], [((f"user{i}@example.com", f"Hello {i}"), {}) for i in range(per)]
    )
    DemoCurrent.tenant = None
    app.enqueue_many(tasks["demo.resize_image"], [((i, 800 + i), {}) for i in range(per)])
    app.enqueue_many(tasks["demo.fetch_feed"], [((i,), {}) for i in range(per)])
    app.enqueue_many(tasks["demo.flaky_sync"], [((i,), {}) for i in range(per)])
    for i in range(per // 10 or 1):
        tasks["demo.broken_report"].enqueue(i)
    for i in range(per // 5 or 1):
        tasks["demo.send_email"].using(run_after=timedelta(seconds=1 + i % 3)).enqueue(
            f"later{i}@example.com", "Scheduled hello"
        )
    return 4 * per + (per // 10 or 1) + (per // 5 or 1)


def summary_table(app: App) -> Table:
    counts = {q.name: q.counts() for q in app.store.queues_overview()}
    successful = app.store.successful_count_by_queue()
    # No demo task has concurrency limits or dependencies: no job is blocked or waiting.
    statuses = [status for status in STATUSES if status not in ("BLOCKED", "WAITING")]
    table = Table(title="Jobs by queue and status")
    table.add_column("queue")
    for status in statuses:
        table.add_column(status.lower(), justify="right")
    totals = dict.fromkeys(statuses, 0)
    for queue in sorted(set(counts) | set(successful)):
        row = dict(counts.get(queue, {}))
        row["SUCCESSFUL"] = successful.get(queue, 0)
        for status in statuses:
            totals[status] += row.get(status, 0)
        table.add_row(queue, *(str(row.get(status, 0)) for status in statuses))
    table.add_section()
    table.add_row("total", *(str(totals[s]) for s in statuses), style="bold")
    return table


def failed_count(app: App) -> int:
    return sum(q.failed for q in app.store.queues_overview())


def run_demo(path: Path, count: int, threads: int, console: Console) -> int:
    """Enqueue, work and summarize; returns the number of jobs that did not succeed."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    app = demo_app(f"sqlite:///{path}")
    app.migrate()
    total = enqueue_demo_jobs(app, count)
    console.print(f"Enqueued [bold]{total}[/] jobs into [cyan]{path}[/] (SQLite).")

    # Failures are part of the show; the summary reports them, not a log line each.
    logging.getLogger("stalwart").setLevel(logging.ERROR)
    worker = Worker(app, queues=["mail", "media", "*"], threads=threads, polling_interval=0.05)
    dispatcher = Dispatcher(app, polling_interval=0.2)
    runners = [threading.Thread(target=a.run, daemon=True) for a in (worker, dispatcher)]
    for t in runners:
        t.start()
    progress = Progress(
        TextColumn("[bold]Working"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[detail]}"),
        TimeElapsedColumn(),
        console=console,
    )
    bar = progress.add_task("jobs", total=total, detail="")
    deadline = time.monotonic() + 120
    try:
        with Live(progress, console=console, refresh_per_second=10):
            while time.monotonic() < deadline:
                pending = app.store.jobs_pending_count()
                failed = failed_count(app)
                progress.update(
                    bar, completed=total - pending, detail=f"{failed} failed, {pending} pending"
                )
                if pending == 0:
                    break
                time.sleep(0.1)
    finally:
        worker.stop()
        dispatcher.stop()
        for t in runners:
            t.join(timeout=30)
    console.print(summary_table(app))
    failed_total = failed_count(app)
    console.print(
        f"{failed_total} job(s) failed on purpose (see `stalwart --database sqlite:///{path} "
        "jobs list --status failed`); failed jobs keep their error and traceback."
    )
    app.close()
    return failed_total
