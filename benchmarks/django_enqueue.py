"""Enqueue cost through Django's task API: Stalwart's backend next to django-tasks-db's
DatabaseBackend, on the same PostgreSQL database, in the same process.

    .venv-django6/bin/python benchmarks/django_enqueue.py \\
        --database postgresql://postgres@127.0.0.1:5432/stalwart_bench --jobs 2000

Two ways for each backend: ``task.enqueue()`` in a loop (each call its own transaction)
and the same loop inside one ``transaction.atomic()`` (Stalwart writes through Django's
connection there). Each cell is the median of --repeat runs, in microseconds per job
and jobs per second. Needs Django 6 (``django.tasks``) and ``pip install
django-tasks-db``. The tables of both are emptied between runs.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import django
from django.conf import settings
from sqlalchemy.engine import make_url


def noop(n: int) -> None:
    return None


def configure(database: str) -> None:
    url = make_url(database)
    settings.configure(
        SECRET_KEY="bench",
        USE_TZ=True,
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "stalwart.contrib.django",
            "django_tasks_db",
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": url.database,
                "USER": url.username or "",
                "PASSWORD": url.password or "",
                "HOST": url.host or "",
                "PORT": str(url.port or ""),
            }
        },
        TASKS={
            "default": {"BACKEND": "stalwart.contrib.django.StalwartBackend"},
            "db": {"BACKEND": "django_tasks_db.DatabaseBackend"},
        },
        LOGGING_CONFIG=None,
    )
    django.setup()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database", default="postgresql://postgres@127.0.0.1:5432/stalwart_bench")
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    configure(args.database)

    from django.core.management import call_command
    from django.db import connection, transaction
    from django.tasks import task

    from stalwart.contrib.django import stalwart_backend

    call_command("migrate", verbosity=0)
    backend = stalwart_backend()
    backend.app.migrate()

    # Decorated once Django is set up; the module attribute becomes the Task, as a
    # worker would import it by its module path.
    noop_task = task(noop)
    globals()["noop"] = noop_task
    db_task = noop_task.using(backend="db")

    def reset() -> None:
        backend.app.store.tables_reset()
        with connection.cursor() as cur:
            cur.execute("TRUNCATE django_tasks_database_dbtaskresult")

    def loop(t: object) -> Callable[[], None]:
        def run() -> None:
            for i in range(args.jobs):
                t.enqueue(i)  # type: ignore[attr-defined]

        return run

    def in_atomic(t: object) -> Callable[[], None]:
        def run() -> None:
            with transaction.atomic():
                loop(t)()

        return run

    cases = [
        ("Stalwart", "task.enqueue() loop", loop(noop_task)),
        ("django-tasks-db", "task.enqueue() loop", loop(db_task)),
        ("Stalwart", "loop in atomic()", in_atomic(noop_task)),
        ("django-tasks-db", "loop in atomic()", in_atomic(db_task)),
    ]
    loop(noop_task)()  # warm up: connections, statement caches
    loop(db_task)()
    print(f"{args.jobs} jobs per run, median of {args.repeat}, PostgreSQL {args.database}")
    print(f"{'backend':<16} {'how':<22} {'us/job':>8} {'jobs/s':>9}")
    for name, how, run in cases:
        times = []
        for _ in range(args.repeat):
            reset()
            started = time.perf_counter()
            run()
            times.append(time.perf_counter() - started)
        median = statistics.median(times)
        print(f"{name:<16} {how:<22} {median / args.jobs * 1e6:>8.0f} {args.jobs / median:>9.0f}")
    reset()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
