"""Helpers for tests of applications that use Stalwart.

``drain(app)`` runs a real worker and dispatcher (in threads of this process) until
no job is left to run, so a test can enqueue, drain, then assert on results::

    def test_welcome_mail(app):
        job = send_welcome.enqueue(user_id=7)
        stalwart.testing.drain(app)
        assert app.get_result(job.id).status == "SUCCESSFUL"

Jobs run exactly as in production: each attempt in a fresh context, with hooks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import timedelta

from .app import App
from .processes import Dispatcher, Worker


def drain(
    app: App,
    *,
    queues: Sequence[str] = ("*",),
    threads: int = 2,
    prefetch: int | str | None = None,
    timeout: float = 60.0,
    polling_interval: float = 0.01,
    within: float = 10.0,
) -> int:
    """Work until nothing is ready, running or blocked, and no scheduled job (a retry's
    backoff included) is due within ``within`` seconds; return the jobs done.

    The rule of ``stalwart start --drain``: jobs scheduled further ahead are left alone.
    Raises TimeoutError if jobs are still due after ``timeout`` seconds.
    """
    worker = Worker(
        app, queues=queues, threads=threads, prefetch=prefetch, polling_interval=polling_interval
    )
    dispatcher = Dispatcher(app, polling_interval=polling_interval)
    actors = [worker, dispatcher]
    runners = [threading.Thread(target=a.run, name=a.name, daemon=True) for a in actors]
    for t in runners:
        t.start()
    deadline = time.monotonic() + timeout
    try:
        while app.store.jobs_any_due(timedelta(seconds=within)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"jobs still pending after {timeout} s")
            time.sleep(polling_interval)
    finally:
        for a in actors:
            a.stop()
        for t in runners:
            t.join(timeout=30)
    return worker.jobs_done


def reset(app: App) -> None:
    """Empty every Stalwart table: a clean slate between tests."""
    app.store.tables_reset()
