"""Admin commands: `migrate`, `check` and `enqueue` (jobs, queues and recurring tasks
have their own modules)."""

from __future__ import annotations

import click

from ..config import Config
from ..errors import ConfigError
from ..store import open_store
from .common import (
    Context,
    call_options,
    check_recurring_tasks,
    config_option,
    console,
    err,
    handle_errors,
    import_app,
    job_dict,
    json_option,
    one_line,
    parse_call,
    print_json,
    redacted_url,
    unlistened_queues,
)
from .group import main

__all__ = ["check", "enqueue", "migrate"]


@main.command()
@json_option("Print the versions applied as JSON.")
@click.pass_obj
@handle_errors
def migrate(obj: Context, as_json: bool) -> None:
    """Create or update Stalwart's tables (safe to run twice, or from two hosts at once)."""
    store = obj.store()
    applied = store.migrate()
    store.dispose()
    if as_json:
        print_json({"applied": applied})
    elif applied:
        console.print(f"Applied migrations: {', '.join(applied)}")
    else:
        console.print("Schema is up to date.")


@main.command()
@config_option()
@json_option("Print the result as JSON: ok, problems, warnings.")
@click.pass_obj
def check(obj: Context, config_path: str | None, as_json: bool) -> None:
    """Validate the configuration, that the app imports, and that the database answers
    and is migrated, without starting anything. Exit 2 on any problem."""
    if config_path:
        obj.config_path = config_path
    problems: list[str] = []
    warnings: list[str] = []
    try:
        config = obj.config
    except ConfigError as exc:
        problems.extend(f"config error: {p}" for p in exc.problems)
        config = None
    if config is not None:
        app = None
        if config.app:
            try:
                app = import_app(config.app)
                app.config = config
            except ConfigError as exc:
                problems.extend(f"config error: {config.source}: {p}" for p in exc.problems)
        problems.extend(f"config error: {p}" for p in check_recurring_tasks(config))
        problems.extend(database_problems(config))
        if app is not None:
            warnings.extend(unlistened_queues(app))
    if as_json:
        print_json({"ok": not problems, "problems": problems, "warnings": warnings})
    else:
        for line in problems:
            err.print(f"[bold red]problem:[/] {line}", highlight=False, soft_wrap=True)
        for line in warnings:
            err.print(f"[yellow]warning:[/] {line}", highlight=False, soft_wrap=True)
    if problems:
        raise SystemExit(2)
    assert config is not None
    if as_json:
        return
    console.print(f"Configuration OK ({config.source}); the database answers and is migrated.")
    console.print(f"  database: {redacted_url(config.database_url)}")
    for i, w in enumerate(config.workers):
        console.print(
            f"  workers[{i}]: queues={list(w.queues)} threads={w.threads} "
            f"processes={w.processes} polling_interval={w.polling_interval}s"
        )
    for i, d in enumerate(config.dispatchers):
        console.print(
            f"  dispatchers[{i}]: batch_size={d.batch_size} polling_interval={d.polling_interval}s"
        )


def database_problems(config: Config) -> list[str]:
    """The database must answer (right host, name, password) and have every migration."""
    where = redacted_url(config.database_url)
    try:
        store = open_store(config.database_url, probe=True, **config.store_options())
    except ConfigError as exc:
        return [f"config error: {p}" for p in exc.problems]
    try:
        store.database_ping()
        pending = store.pending_migrations()
    except Exception as exc:
        hint = ""
        if "unsupported startup parameter" in str(exc):
            hint = " (a pooler such as PgBouncer? set transaction_pooling = true)"
        return [f"database {where}: cannot connect: {one_line(exc)}{hint}"]
    finally:
        store.dispose()
    if pending:
        return [
            f"database {where}: migrations {', '.join(pending)} are pending: run `stalwart migrate`"
        ]
    return []


@main.command()
@click.argument("task")
@call_options
@click.option("--queue", default=None, help="Queue name (default: the task's).")
@click.option("--priority", type=int, default=None, help="-100..100, larger runs first.")
@json_option("Print the job as JSON.")
@click.pass_obj
@handle_errors
def enqueue(
    obj: Context,
    task: str,
    args_json: str,
    kwargs_json: str,
    queue: str | None,
    priority: int | None,
    as_json: bool,
) -> None:
    """Enqueue one job of TASK (a registered task name)."""
    args, kwargs = parse_call(args_json, kwargs_json)
    app = obj.app()
    job = app.enqueue(task, args, kwargs, queue_name=queue, priority=priority)
    if as_json:
        print_json(job_dict(job))
    else:
        console.print(
            f"Enqueued job {job.id} ({job.task_name}) on queue {job.queue_name!r}: {job.status}"
        )
