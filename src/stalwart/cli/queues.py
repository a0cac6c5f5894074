"""`stalwart queues`: list queues with their counts, pause and resume them."""

from __future__ import annotations

import click
from rich.table import Table

from ..names import check_queue_name
from ..store.statuses import EXECUTIONS
from .common import Context, audit, console, err, fail, handle_errors, json_option, print_json
from .group import main

__all__ = ["queues"]


@main.group()
def queues() -> None:
    """List, pause and resume queues."""


@queues.command("list")
@json_option()
@click.pass_obj
@handle_errors
def queues_list(obj: Context, as_json: bool) -> None:
    """Queues with their job counts by status, and whether they are paused."""
    overview = obj.store().queues_overview()
    if as_json:
        print_json(
            {
                q.name: {"paused": q.paused, **{s.lower(): n for s, n in q.counts().items()}}
                for q in overview
            }
        )
        return
    table = Table(title="Queues")
    table.add_column("queue")
    table.add_column("paused")
    for s in EXECUTIONS:
        table.add_column(s.lower(), justify="right")
    for q in overview:
        table.add_row(q.name, "yes" if q.paused else "", *(str(n) for n in q.counts().values()))
    console.print(table)


@queues.command("pause")
@click.argument("queue")
@json_option()
@click.pass_obj
@handle_errors
def queues_pause(obj: Context, queue: str, as_json: bool) -> None:
    """Stop workers from taking jobs of QUEUE (running jobs finish). A queue no job,
    worker or pause ever named is paused too, with a warning: a typo shows."""
    _valid_queue(queue)
    store = obj.store()
    known = store.queue_known(queue)
    if not known:
        err.print(
            f"[yellow]warning:[/] no job, worker or pause has ever named queue {queue!r} "
            "(a typo?); pausing it anyway",
            highlight=False,
            soft_wrap=True,
        )
    changed = store.queue_pause(queue)
    audit(store, "pause", target=queue, affected=int(changed))
    if as_json:
        print_json({"queue": queue, "paused": True, "changed": changed, "known": known})
    else:
        console.print(f"Queue {queue!r} {'paused' if changed else 'was already paused'}.")


@queues.command("resume")
@click.argument("queue")
@json_option()
@click.pass_obj
@handle_errors
def queues_resume(obj: Context, queue: str, as_json: bool) -> None:
    """Let workers take jobs of QUEUE again."""
    _valid_queue(queue)
    store = obj.store()
    changed = store.queue_resume(queue)
    audit(store, "resume", target=queue, affected=int(changed))
    if as_json:
        print_json({"queue": queue, "paused": False, "changed": changed})
    else:
        console.print(f"Queue {queue!r} {'resumed' if changed else 'was not paused'}.")


def _valid_queue(queue: str) -> None:
    try:
        check_queue_name(queue, "queue")
    except ValueError as exc:
        fail(str(exc), 2)
