"""`stalwart demo` and `stalwart bench`: see Stalwart work, and measure it."""

from __future__ import annotations

from pathlib import Path

import click

from .common import (
    PREFETCH,
    Context,
    call_options,
    console,
    database_option,
    err,
    fail,
    handle_errors,
    json_option,
    parse_call,
    print_json,
    require_migrated,
)
from .group import main

__all__ = ["bench", "demo"]


@main.command()
@click.option(
    "--path",
    default="stalwart-demo.db",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="SQLite file to create.",
)
@click.option("--jobs", "count", default=300, show_default=True, help="About how many jobs.")
@click.option("--threads", default=8, show_default=True, help="Worker threads.")
@handle_errors
def demo(path: Path, count: int, threads: int) -> None:
    """Enqueue a few hundred jobs into a new SQLite database and work them, live."""
    from ..demo import run_demo

    run_demo(path, count, threads, console)


@main.command()
@click.option(
    "--task",
    "task_spec",
    default="noop",
    show_default=True,
    help="noop, sleep:MS (sleeps MS milliseconds), or module:function (a task of your app).",
)
@call_options
@click.option(
    "--jobs", default=1000, show_default=True, type=click.IntRange(1), help="Jobs per setting."
)
@click.option(
    "--sweep",
    default="1x1,1x4,2x4,4x4",
    show_default=True,
    help="Worker settings to compare, PROCESSESxTHREADS, comma-separated.",
)
@click.option(
    "--rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Enqueue steadily at this many jobs/s while the workers run "
    "(default: all at once, a backlog).",
)
@click.option(
    "--prefetch",
    type=PREFETCH,
    default=None,
    help='Worker prefetch, a count or "auto" (default: the first [[workers]] entry\'s).',
)
@click.option(
    "--polling-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Worker polling interval, seconds (default: the first [[workers]] entry's).",
)
@database_option("Database URL (same as the global --database; default: the configured one).")
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also draw latency percentiles and throughput per setting to this PNG (matplotlib).",
)
@json_option("Print the results as JSON.")
@click.pass_obj
@handle_errors
def bench(
    obj: Context,
    task_spec: str,
    args_json: str,
    kwargs_json: str,
    jobs: int,
    sweep: str,
    rate: float | None,
    prefetch: int | str | None,
    polling_interval: float | None,
    database: str | None,
    plot_path: str | None,
    as_json: bool,
) -> None:
    """Capacity planning: throughput, latency percentiles, CPU and memory per worker
    setting, and the change from one setting to the next."""
    from .. import bench as b
    from ..config import WorkerConfig

    if database:
        obj.database = database
    try:
        settings = b.parse_sweep(sweep)
    except ValueError as exc:
        fail(str(exc), 2)
    args, kwargs = parse_call(args_json, kwargs_json)
    if plot_path:
        b.check_plot_available()
    app = obj.app()
    require_migrated(app)
    b.prepare(app)
    try:
        task = b.resolve_task(app, task_spec, args, kwargs)
    except ValueError as exc:
        fail(str(exc), 2)
    configured = obj.config.workers[0] if obj.config.workers else WorkerConfig()
    others = b.other_workers(app)
    if others:
        err.print(
            f"[yellow]warning:[/] {len(others)} other worker(s) take jobs from every queue "
            f"({', '.join(others[:3])}): they will run bench jobs too and skew the numbers.",
            highlight=False,
        )

    def progress(r: b.SettingResult) -> None:
        err.print(
            f"{r.setting.label}: {r.jobs:,} jobs in {r.elapsed_s:.2f} s "
            f"({r.throughput:,.0f} jobs/s)",
            highlight=False,
        )

    results = b.run_sweep(
        app,
        task,
        settings,
        jobs,
        rate=rate,
        prefetch=configured.prefetch if prefetch is None else prefetch,
        polling_interval=(
            configured.polling_interval if polling_interval is None else polling_interval
        ),
        progress=progress,
    )
    load = f"at {rate:g} jobs/s" if rate else "enqueued at once"
    title = f"{task.label}: {jobs:,} jobs per setting, {load}, on {app.store.engine.dialect.name}"
    if as_json:
        print_json(
            b.to_json(
                results, database_url=obj.config.database_url, task=task, jobs=jobs, rate=rate
            )
        )
    else:
        b.render(
            results,
            console,
            title=title,
            rate=rate,
            note="p50-p99: latency, enqueued → finished, ms; run p50: started → finished, "
            "ms. CPU %: the worker processes, 100 = one core busy. RSS: their peak, summed.",
        )
    if plot_path:
        b.plot(results, plot_path, title=title)
        err.print(f"Plot written to {plot_path}", highlight=False)
