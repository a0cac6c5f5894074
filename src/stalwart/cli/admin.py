"""Admin commands: `migrate`, `check` and `enqueue` (jobs, queues and recurring tasks
have their own modules)."""

from __future__ import annotations

import click

from ..errors import ConfigError
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
    parse_call,
    print_json,
)
from .group import main

__all__ = ["check", "enqueue", "migrate"]


@main.command()
@click.pass_obj
@handle_errors
def migrate(obj: Context) -> None:
    """Create or update Stalwart's tables (safe to run twice, or from two hosts at once)."""
    store = obj.store()
    applied = store.migrate()
    store.dispose()
    if applied:
        console.print(f"Applied migrations: {', '.join(applied)}")
    else:
        console.print("Schema is up to date.")


@main.command()
@config_option()
@click.pass_obj
def check(obj: Context, config_path: str | None) -> None:
    """Validate the configuration (and that the app imports) without starting anything."""
    if config_path:
        obj.config_path = config_path
    problems: list[str] = []
    try:
        config = obj.config
    except ConfigError as exc:
        problems.extend(exc.problems)
        config = None
    if config is not None:
        if config.app:
            try:
                import_app(config.app)
            except ConfigError as exc:
                problems.extend(f"{config.source}: {p}" for p in exc.problems)
        problems.extend(check_recurring_tasks(config))
    if problems:
        for problem in problems:
            err.print(f"[bold red]config error:[/] {problem}", highlight=False, soft_wrap=True)
        raise SystemExit(2)
    assert config is not None
    console.print(f"Configuration OK ({config.source}).")
    console.print(f"  database: {config.database_url}")
    for i, w in enumerate(config.workers):
        console.print(
            f"  workers[{i}]: queues={list(w.queues)} threads={w.threads} "
            f"processes={w.processes} polling_interval={w.polling_interval}s"
        )
    for i, d in enumerate(config.dispatchers):
        console.print(
            f"  dispatchers[{i}]: batch_size={d.batch_size} polling_interval={d.polling_interval}s"
        )


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
