"""`stalwart jobs`: list, show, retry, discard and cancel jobs."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from ..errors import JobNotFound
from ..results import JobResult
from ..store import FailedFilter, JobRow, Store
from ..store.reads import JobFilter
from ..store.statuses import ALIASES, STATUSES, status_named
from .common import (
    JOB_ID,
    Context,
    F,
    audit,
    console,
    fail,
    handle_errors,
    job_dict,
    json_option,
    print_json,
    ts,
)
from .group import main

__all__ = ["jobs"]

# "finished" is accepted for "successful", as earlier versions called it.
STATUS_CHOICES = [s.lower() for s in STATUSES] + [a.lower() for a in ALIASES]


@main.group()
def jobs() -> None:
    """List, show, retry and discard jobs."""


@jobs.command("list")
@click.option(
    "--status",
    type=click.Choice(STATUS_CHOICES, case_sensitive=False),
    default="failed",
    show_default=True,
    help="finished: the same as successful.",
)
@click.option("--queue", default=None)
@click.option("--task", default=None)
@click.option("--limit", default=50, show_default=True)
@json_option()
@click.pass_obj
@handle_errors
def jobs_list(
    obj: Context, status: str, queue: str | None, task: str | None, limit: int, as_json: bool
) -> None:
    """List jobs in one status, newest first (successful ones: last finished first)."""
    store = obj.store()
    which = JobFilter(status_named(status), queue_name=queue, task_name=task)
    results = [JobResult.from_row(r) for r in _jobs_of(store, which, limit)]
    if as_json:
        print_json([job_dict(r) for r in results])
        return
    table = Table(title=f"{which.status.lower()} jobs")
    for col in ("id", "task", "queue", "priority", "attempts", "enqueued", "error"):
        table.add_column(col)
    for r in results:
        error = f"{r.errors[-1].exception_class}: {r.errors[-1].message}" if r.errors else ""
        table.add_row(
            str(r.id),
            r.task_name,
            r.queue_name,
            str(r.priority),
            str(r.attempts),
            ts(r.enqueued_at),
            error[:80],
        )
    console.print(table)


def _jobs_of(store: Store, which: JobFilter, limit: int) -> list[JobRow]:
    """Up to ``limit`` jobs ``which`` selects, in the order of `Store.jobs_page`: page
    after page, on past the bounded windows that ended before the page filled."""
    ids: list[int] = []
    cursor = None
    while len(ids) < limit:
        page = store.jobs_page(which, cursor=cursor, limit=limit - len(ids))
        ids += [r.id for r in page.rows]
        cursor = page.next_cursor
        if cursor is None:
            break
    by_id = {r.id: r for r in store.jobs_get(ids)}
    return [by_id[i] for i in ids if i in by_id]


@jobs.command("show")
@click.argument("job_id", type=JOB_ID)
@json_option()
@click.pass_obj
@handle_errors
def jobs_show(obj: Context, job_id: int, as_json: bool) -> None:
    """Show one job: status, arguments, timing, batch, progress, dependencies (both
    ways), errors with tracebacks."""
    store = obj.store()
    try:
        result = JobResult.from_row(store.job_get(job_id))
    except JobNotFound as exc:
        fail(str(exc))
    data = job_dict(result)
    ups, downs = store.job_links(job_id)
    data["depends_on"] = [{"id": x.job_id, "task": x.task_name, "status": x.status} for x in ups]
    data["dependents"] = [{"id": x.job_id, "task": x.task_name, "status": x.status} for x in downs]
    if as_json:
        print_json(data)
        return
    for key, value in data.items():
        if key != "errors":
            # Arguments, results and times as JSON, never Python's repr.
            shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
            console.print(f"[bold]{key}[/]: {escape(shown)}", highlight=False)
    for i, e in enumerate(result.errors, 1):
        console.print(f"[bold red]error {i}[/] at {ts(e.at)}: {e.exception_class}: {e.message}")
        console.print(e.traceback, highlight=False, markup=False)


def _failed_filter(
    ids: tuple[int, ...], all_: bool, task: str | None, queue: str | None, error_class: str | None
) -> FailedFilter:
    if not ids and not (all_ or task or queue or error_class):
        fail("name job ids, or a filter (--task, --queue, --error-class), or --all", 2)
    return FailedFilter(
        list(ids) if ids else None, task_name=task, queue_name=queue, error_class=error_class
    )


def _bulk_options(fn: F) -> F:
    fn = click.argument("job_ids", nargs=-1, type=JOB_ID)(fn)
    fn = click.option("--all", "all_", is_flag=True, help="Every failed job.")(fn)
    fn = click.option("--task", default=None)(fn)
    fn = click.option("--queue", default=None)(fn)
    fn = click.option("--error-class", default=None)(fn)
    return fn


def _failed_command(name: str, done: str, doc: str) -> None:
    """``jobs retry`` or ``jobs discard``: the same options, one store verb each."""

    @jobs.command(name, help=doc)
    @_bulk_options
    @json_option()
    @click.pass_obj
    @handle_errors
    def command(
        obj: Context,
        job_ids: tuple[int, ...],
        all_: bool,
        task: str | None,
        queue: str | None,
        error_class: str | None,
        as_json: bool,
    ) -> None:
        store = obj.store()
        verb = store.failed_retry if name == "retry" else store.failed_discard
        which = _failed_filter(job_ids, all_, task, queue, error_class)
        n = verb(which)
        # The dashboard's audit log, with the same actions (a filter: bulk_<action>).
        if job_ids:
            audit(store, name, job_ids=sorted(set(job_ids)), affected=n)
        else:
            where = {"task": task, "queue": queue, "error_class": error_class}
            target = "failed jobs where " + (
                ", ".join(f"{k}={v!r}" for k, v in sorted(where.items()) if v) or "all"
            )
            audit(store, f"bulk_{name}", target=target, affected=n)
        if as_json:
            print_json({"action": name, "affected": n})
        else:
            console.print(f"{done} {n} failed job(s).")


_failed_command("retry", "Retried", "Put failed jobs back in their queue.")
_failed_command("discard", "Discarded", "Delete failed jobs for good.")


@jobs.command("cancel")
@click.argument("job_ids", nargs=-1, type=JOB_ID, required=True)
@json_option()
@click.pass_obj
@handle_errors
def jobs_cancel(obj: Context, job_ids: tuple[int, ...], as_json: bool) -> None:
    """Cancel jobs that have not ended: waiting ones leave their line, running ones are
    stopped by their worker within about a second; each ends failed (Cancelled), never
    retried."""
    store = obj.store()
    done = [i for i in job_ids if store.job_cancel(i)]
    skipped = sorted(set(job_ids) - set(done))
    audit(store, "cancel", job_ids=sorted(set(job_ids)), affected=len(done))
    if as_json:
        print_json({"cancelled": done, "not_cancelled": skipped})
    else:
        console.print(f"Cancelled {len(done)} job(s).")
    if skipped:
        if not as_json:
            console.print(f"Ended already (successful or failed) or unknown: {skipped}")
        raise SystemExit(1)
