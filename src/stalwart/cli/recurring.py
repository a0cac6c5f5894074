"""`stalwart recurring`: list recurring tasks, or run one now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from ..recurring import COMMAND_TASK, row_from_config
from ..schedules import parse_schedule
from .common import (
    Context,
    audit,
    console,
    fail,
    handle_errors,
    iso,
    job_dict,
    json_option,
    print_json,
)
from .group import main

__all__ = ["recurring"]


@main.group()
def recurring() -> None:
    """List recurring tasks, or run one now."""


@recurring.command("list")
@json_option()
@click.pass_obj
@handle_errors
def recurring_list(obj: Context, as_json: bool) -> None:
    """Recurring tasks with their schedule, last and next run (those of the config
    that no scheduler has registered yet too, marked so). Writes nothing."""
    app = obj.app()
    configured = [row_from_config(rc) for rc in app.config.recurring]
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []
    for task in app.store.recurring_overview(configured):
        try:
            nxt = parse_schedule(task.schedule, task.time_zone).next_after(now).isoformat()
        except ValueError as exc:
            nxt = f"invalid: {exc}"
        rows.append(
            {
                "key": task.key,
                "schedule": task.schedule,
                "time_zone": task.time_zone,
                "task": COMMAND_TASK if task.command is not None else task.task_name,
                "missed": task.missed,
                "static": task.static,
                "registered": task.registered,
                "last_run": iso(task.last_run_at),
                "next_run": nxt,
                "description": task.description,
            }
        )
    if as_json:
        print_json(rows)
        return
    table = Table(title="Recurring tasks")
    for col in ("key", "schedule", "task", "missed", "last run", "next run"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["key"]) + ("" if r["registered"] else " (not registered yet)"),
            f"{r['schedule']} ({r['time_zone']})",
            str(r["task"]),
            str(r["missed"]),
            str(r["last_run"] or ""),
            str(r["next_run"]),
        )
    console.print(table)


@recurring.command("run-now")
@click.argument("key")
@json_option()
@click.pass_obj
@handle_errors
def recurring_run_now(obj: Context, key: str, as_json: bool) -> None:
    """Enqueue one run of recurring task KEY now, outside its schedule."""
    app = obj.app()
    try:
        job = app.recurring.run_now(key)
    except KeyError as exc:
        fail(str(exc.args[0]))
    audit(app.store, "run_recurring", target=key, job_ids=[job.id], affected=1)
    if as_json:
        print_json({"key": key, "job": job_dict(job)})
    else:
        console.print(f"Enqueued job {job.id} ({job.task_name}) for recurring task {key!r}.")
