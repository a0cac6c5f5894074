"""`stalwart batches`: list batches, show one with its counts and callbacks."""

from __future__ import annotations

from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from ..errors import BatchNotFound
from ..workflows import BatchResult
from .common import JOB_ID, Context, console, fail, handle_errors, iso, json_option, print_json, ts
from .group import main

__all__ = ["batches"]


@main.group()
def batches() -> None:
    """List batches and show one."""


def batch_dict(b: BatchResult) -> dict[str, Any]:
    return {
        "id": b.id,
        "description": b.description,
        "status": str(b.status),
        "total": b.total,
        "pending": b.pending,
        "succeeded": b.succeeded,
        "failed": b.failed,
        "created_at": iso(b.created_at),
        "finished_at": iso(b.finished_at),
        "callbacks": [{"on": c.on, "task": c.task_name, "job_id": c.job_id} for c in b.callbacks],
    }


@batches.command("list")
@click.option("--limit", default=50, show_default=True)
@json_option()
@click.pass_obj
@handle_errors
def batches_list(obj: Context, limit: int, as_json: bool) -> None:
    """The newest batches first, with their counts."""
    results = [BatchResult.from_row(r) for r in obj.store().batches_list(limit)]
    if as_json:
        print_json([batch_dict(b) for b in results])
        return
    table = Table(title="batches")
    for col in ("id", "description", "status", "total", "pending", "ok", "failed", "created"):
        table.add_column(col)
    for b in results:
        table.add_row(
            str(b.id),
            escape(b.description or ""),
            str(b.status).lower(),
            str(b.total),
            str(b.pending),
            str(b.succeeded),
            str(b.failed),
            ts(b.created_at),
        )
    console.print(table)


@batches.command("show")
@click.argument("batch_id", type=JOB_ID)
@json_option()
@click.pass_obj
@handle_errors
def batches_show(obj: Context, batch_id: int, as_json: bool) -> None:
    """One batch: counts, status, times, and its callbacks with their jobs."""
    try:
        b = BatchResult.from_row(obj.store().batch_get(batch_id))
    except BatchNotFound as exc:
        fail(str(exc))
    data = batch_dict(b)
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key != "callbacks":
            console.print(f"[bold]{key}[/]: {escape(str(value))}", highlight=False)
    for c in b.callbacks:
        job = f"job {c.job_id}" if c.job_id is not None else "not enqueued"
        console.print(f"[bold]on_{c.on}[/]: {escape(c.task_name)} ({job})", highlight=False)
