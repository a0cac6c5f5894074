"""The `stalwart` command.

Exit codes: 0 ok, 1 runtime failure (including an unreachable database), 2 usage or
configuration error.
"""

from __future__ import annotations

import functools
import importlib
import json
import logging
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import DBAPIError, OperationalError

from .app import App
from .config import Config, load_config
from .errors import ConfigError, DatabaseUnavailable, JobNotFound, StalwartError
from .store import FailedFilter, JobRow, Store
from .store.reads import JobFilter
from .store.statuses import ALIASES, EXECUTIONS, STATUSES, status_named
from .tasks import JobResult, check_queue_name

F = TypeVar("F", bound=Callable[..., Any])
console = Console()
err = Console(stderr=True)


class Context:
    def __init__(self, config_path: str | None, database: str | None) -> None:
        self.config_path = config_path
        self.database = database
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, overrides={"database_url": self.database})
        return self._config

    def store(self) -> Store:
        return Store.from_url(
            self.config.database_url, preserve_finished_jobs=self.config.preserve_finished_jobs
        )

    def app(self) -> App:
        """The user's app (its tasks registered), or a bare one if none is configured."""
        if self.config.app is None:
            return App(config=self.config)
        app = import_app(self.config.app)
        app.config = _merge(app.config, self.config)
        return app


def _merge(app_config: Config, cli_config: Config) -> Config:
    # The command line's view of the config (file, environment, flags) wins.
    return cli_config


def import_app(path: str) -> App:
    """Import ``module:attribute``; ConfigError naming what failed."""
    module_name, _, attr = path.partition(":")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))  # like `python -m`: the project is importable
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise ConfigError(
            [f"app: cannot import module {module_name!r}: {type(exc).__name__}: {exc}"]
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError([f"app: module {module_name!r} has no attribute {attr!r}"])
        obj = getattr(obj, part)
    if not isinstance(obj, App):
        raise ConfigError([f"app: {path!r} is a {type(obj).__name__}, not a stalwart.App"])
    return obj


def _check_recurring_tasks(config: Config) -> list[str]:
    """Each recurring task must name a task the app registers."""
    if not config.recurring or not config.app:
        return []
    from .recurring import task_name_of

    try:
        app = import_app(config.app)
    except ConfigError:
        return []  # reported already
    return [
        f"{config.source}: recurring.{rc.key}.task: {rc.task!r} is not a task of {config.app}"
        for rc in config.recurring
        if rc.task and task_name_of(rc.task) not in app.tasks
    ]


def fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]stalwart:[/] {message}", highlight=False, soft_wrap=True)
    raise SystemExit(code)


def handle_errors(fn: F) -> F:
    """Turn known errors into one clear line and the documented exit code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ConfigError as exc:
            for problem in exc.problems:
                err.print(f"[bold red]config error:[/] {problem}", highlight=False, soft_wrap=True)
            raise SystemExit(2) from None
        except (DatabaseUnavailable, OperationalError) as exc:
            fail(f"cannot use the database: {_one_line(exc)}")
        except DBAPIError as exc:
            fail(f"database error: {_one_line(exc)}")
        except StalwartError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def _one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    if "does not exist" in text or "Unknown database" in text:
        text += " (create it first, then run `stalwart migrate`)"
    elif "no such table" in text or "doesn't exist" in text:
        text += " (run `stalwart migrate`)"
    return text


def _print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (default: ./stalwart.toml or [tool.stalwart] in pyproject.toml).",
)
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="Database URL (overrides the config and $STALWART_DATABASE_URL).",
)
@click.option(
    "--log-level",
    default="WARNING",
    show_default=True,
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
)
@click.version_option(package_name="stalwart")
@click.pass_context
def main(ctx: click.Context, config_path: str | None, database: str | None, log_level: str) -> None:
    """Stalwart: background jobs stored in your own SQL database."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = Context(config_path, database)


# ---- demo, migrate, check ----


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
    from .demo import run_demo

    run_demo(path, count, threads, console)


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
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (same as the global --config).",
)
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
        from .schedules import check_recurring

        problems.extend(check_recurring(config))
        problems.extend(_check_recurring_tasks(config))
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


# ---- start ----


@main.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Config file (same as the global --config).",
)
@click.option(
    "--drain", is_flag=True, help="Exit 0 once nothing is ready, scheduled, blocked or running."
)
@click.pass_obj
@handle_errors
def start(obj: Context, config_path: str | None, drain: bool) -> None:
    """Start the supervisor: it forks the configured workers and dispatchers."""
    from .processes.supervisor import Supervisor
    from .schedules import check_recurring

    if config_path:
        obj.config_path = config_path
    config = obj.config
    logging.getLogger().setLevel(config.log_level)
    problems = check_recurring(config) + _check_recurring_tasks(config)
    if problems:
        raise ConfigError(problems)
    app = obj.app()
    pending = app.store.pending_migrations()
    if pending:
        fail(f"the database needs migrations {', '.join(pending)}: run `stalwart migrate`", 2)
    raise SystemExit(Supervisor(app, drain=drain).run())


@main.command("dashboard")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int)
@click.option("--root-path", default="", help="Path prefix when a proxy mounts it, e.g. /jobs.")
@click.option("--read-only", is_flag=True, help="Nobody may act: pages only.")
@click.option(
    "--trusted-proxy", multiple=True, metavar="CIDR", help="A proxy whose headers are believed."
)
@click.option("--cloudfront", is_flag=True, help="Believe CloudFront-Viewer-Address.")
@click.option("--forwarded-for", is_flag=True, help="Believe X-Forwarded-For (trusted hops).")
@click.option(
    "--origin-secret-header",
    default=None,
    metavar="NAME",
    help="Header CloudFront adds with $STALWART_DASHBOARD_ORIGIN_SECRET as its value.",
)
@click.option("--allow-ip", multiple=True, metavar="CIDR", help="Only these clients get in.")
@click.option("--ssl-certfile", default=None, type=click.Path(dir_okay=False, exists=True))
@click.option("--ssl-keyfile", default=None, type=click.Path(dir_okay=False, exists=True))
@click.pass_obj
@handle_errors
def dashboard_command(
    obj: Context,
    host: str,
    port: int,
    root_path: str,
    read_only: bool,
    trusted_proxy: tuple[str, ...],
    cloudfront: bool,
    forwarded_for: bool,
    origin_secret_header: str | None,
    allow_ip: tuple[str, ...],
    ssl_certfile: str | None,
    ssl_keyfile: str | None,
) -> None:
    """Serve the web dashboard, production-ready with no proxy needed in front.

    Users come from the environment: STALWART_DASHBOARD_ADMINS="alice:pw,..." may act,
    STALWART_DASHBOARD_VIEWERS="bob:pw" may only look. With neither, every page
    answers 401 saying how to set them.
    """
    import os

    import uvicorn

    from .web import BasicAuth, ClientIPConfig
    from .web import dashboard as make_dashboard

    try:
        auth = BasicAuth.from_env_values(
            os.environ.get("STALWART_DASHBOARD_ADMINS"),
            os.environ.get("STALWART_DASHBOARD_VIEWERS"),
        )
        secret = os.environ.get("STALWART_DASHBOARD_ORIGIN_SECRET")
        if origin_secret_header and not secret:
            raise ValueError("--origin-secret-header needs $STALWART_DASHBOARD_ORIGIN_SECRET")
        client_ip = None
        if trusted_proxy or cloudfront or forwarded_for:
            client_ip = ClientIPConfig(
                trusted_proxies=trusted_proxy,
                cloudfront=cloudfront,
                forwarded_for=forwarded_for,
                origin_secret_header=(
                    (origin_secret_header, secret or "") if origin_secret_header else None
                ),
            )
    except ValueError as exc:
        fail(str(exc), 2)
    app = obj.app()
    pending = app.store.pending_migrations()
    if pending:
        fail(f"the database needs migrations {', '.join(pending)}: run `stalwart migrate`", 2)
    web = make_dashboard(
        app, auth=auth, read_only=read_only, client_ip=client_ip, allow_ips=allow_ip
    )
    if auth is None:
        err.print(
            "[bold yellow]stalwart:[/] no users configured: every page answers 401. Set "
            "STALWART_DASHBOARD_ADMINS=name:password (and STALWART_DASHBOARD_VIEWERS).",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"Stalwart dashboard on http{'s' if ssl_certfile else ''}://{host}:{port}")
    uvicorn.run(
        web,
        host=host,
        port=port,
        root_path=root_path,
        # Our ClientIPMiddleware decides which forwarding headers to believe.
        proxy_headers=False,
        server_header=False,
        # Idle keep-alive connections are closed soon; a slow client cannot hold
        # the server (h11 caps header size; the app caps bodies).
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        limit_concurrency=256,
        backlog=512,
        h11_max_incomplete_event_size=16 * 1024,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level=logging.getLogger().getEffectiveLevel(),
    )


# ---- bench ----


@main.command()
@click.option(
    "--task",
    "task_spec",
    default="noop",
    show_default=True,
    help="noop, sleep:MS (sleeps MS milliseconds), or module:function (a task of your app).",
)
@click.option("--args", "args_json", default="[]", help="JSON list of arguments for the task.")
@click.option("--kwargs", "kwargs_json", default="{}", help="JSON object of keyword arguments.")
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
    type=click.IntRange(0),
    default=None,
    help="Worker prefetch (default: the first [[workers]] entry's).",
)
@click.option(
    "--polling-interval",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Worker polling interval, seconds (default: the first [[workers]] entry's).",
)
@click.option(
    "--database",
    default=None,
    metavar="URL",
    help="Database URL (same as the global --database; default: the configured one).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also draw latency percentiles and throughput per setting to this PNG (matplotlib).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
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
    prefetch: int | None,
    polling_interval: float | None,
    database: str | None,
    plot_path: str | None,
    as_json: bool,
) -> None:
    """Capacity planning: throughput, latency percentiles, CPU and memory per worker
    setting, and the change from one setting to the next."""
    from . import bench as b
    from .config import WorkerConfig

    if database:
        obj.database = database
    try:
        settings = b.parse_sweep(sweep)
        args, kwargs = json.loads(args_json), json.loads(kwargs_json)
    except ValueError as exc:  # JSONDecodeError is one too
        fail(f"{exc}", 2)
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        fail("--args must be a JSON list and --kwargs a JSON object", 2)
    if plot_path:
        b.check_plot_available()
    app = obj.app()
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
        _print_json(
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


# ---- enqueue ----


@main.command()
@click.argument("task")
@click.option("--args", "args_json", default="[]", help="JSON list of positional arguments.")
@click.option("--kwargs", "kwargs_json", default="{}", help="JSON object of keyword arguments.")
@click.option("--queue", default=None, help="Queue name (default: the task's).")
@click.option("--priority", type=int, default=None, help="-100..100, larger runs first.")
@click.option("--json", "as_json", is_flag=True, help="Print the job as JSON.")
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
    try:
        args = json.loads(args_json)
        kwargs = json.loads(kwargs_json)
    except json.JSONDecodeError as exc:
        fail(f"--args/--kwargs must be JSON: {exc}", 2)
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        fail("--args must be a JSON list and --kwargs a JSON object", 2)
    app = obj.app()
    job = app.enqueue(task, args, kwargs, queue_name=queue, priority=priority)
    if as_json:
        _print_json(_job_dict(job))
    else:
        console.print(
            f"Enqueued job {job.id} ({job.task_name}) on queue {job.queue_name!r}: {job.status}"
        )


# ---- jobs ----


@main.group()
def jobs() -> None:
    """List, show, retry and discard jobs."""


# "finished" is accepted for "successful", as earlier versions called it.
STATUS_CHOICES = [s.lower() for s in STATUSES] + [a.lower() for a in ALIASES]


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
@click.option("--json", "as_json", is_flag=True)
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
        _print_json([_job_dict(r) for r in results])
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
            _ts(r.enqueued_at),
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
@click.argument("job_id", type=int)
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def jobs_show(obj: Context, job_id: int, as_json: bool) -> None:
    """Show one job: status, arguments, timing, errors with tracebacks."""
    store = obj.store()
    try:
        result = JobResult.from_row(store.job_get(job_id))
    except JobNotFound as exc:
        fail(str(exc))
    data = _job_dict(result)
    if as_json:
        _print_json(data)
        return
    for key, value in data.items():
        if key != "errors":
            console.print(f"[bold]{key}[/]: {value}", highlight=False)
    for i, e in enumerate(result.errors, 1):
        console.print(f"[bold red]error {i}[/] at {_ts(e.at)}: {e.exception_class}: {e.message}")
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
    fn = click.argument("job_ids", nargs=-1, type=int)(fn)
    fn = click.option("--all", "all_", is_flag=True, help="Every failed job.")(fn)
    fn = click.option("--task", default=None)(fn)
    fn = click.option("--queue", default=None)(fn)
    fn = click.option("--error-class", default=None)(fn)
    return fn


@jobs.command("retry")
@_bulk_options
@click.pass_obj
@handle_errors
def jobs_retry(
    obj: Context,
    job_ids: tuple[int, ...],
    all_: bool,
    task: str | None,
    queue: str | None,
    error_class: str | None,
) -> None:
    """Put failed jobs back in their queue."""
    n = obj.store().failed_retry(_failed_filter(job_ids, all_, task, queue, error_class))
    console.print(f"Retried {n} failed job(s).")


@jobs.command("discard")
@_bulk_options
@click.pass_obj
@handle_errors
def jobs_discard(
    obj: Context,
    job_ids: tuple[int, ...],
    all_: bool,
    task: str | None,
    queue: str | None,
    error_class: str | None,
) -> None:
    """Delete failed jobs for good."""
    n = obj.store().failed_discard(_failed_filter(job_ids, all_, task, queue, error_class))
    console.print(f"Discarded {n} failed job(s).")


@jobs.command("cancel")
@click.argument("job_ids", nargs=-1, type=int, required=True)
@click.pass_obj
@handle_errors
def jobs_cancel(obj: Context, job_ids: tuple[int, ...]) -> None:
    """Cancel scheduled, ready or blocked jobs (they end failed, reason Cancelled)."""
    store = obj.store()
    done = [i for i in job_ids if store.job_cancel(i)]
    skipped = sorted(set(job_ids) - set(done))
    console.print(f"Cancelled {len(done)} job(s).")
    if skipped:
        console.print(f"Not waiting (running, finished, failed or unknown): {skipped}")
        raise SystemExit(1)


# ---- queues ----


@main.group()
def queues() -> None:
    """List, pause and resume queues."""


@queues.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def queues_list(obj: Context, as_json: bool) -> None:
    """Queues with their job counts by status, and whether they are paused."""
    queues = obj.store().queues_overview()
    if as_json:
        _print_json(
            {
                q.name: {
                    "paused": q.paused,
                    **{s.lower(): n for s, n in q.counts().items()},
                }
                for q in queues
            }
        )
        return
    table = Table(title="Queues")
    table.add_column("queue")
    table.add_column("paused")
    for s in EXECUTIONS:
        table.add_column(s.lower(), justify="right")
    for q in queues:
        table.add_row(q.name, "yes" if q.paused else "", *(str(n) for n in q.counts().values()))
    console.print(table)


@queues.command("pause")
@click.argument("queue")
@click.pass_obj
@handle_errors
def queues_pause(obj: Context, queue: str) -> None:
    """Stop workers from taking jobs of QUEUE (running jobs finish)."""
    _valid_queue(queue)
    changed = obj.store().queue_pause(queue)
    console.print(f"Queue {queue!r} {'paused' if changed else 'was already paused'}.")


@queues.command("resume")
@click.argument("queue")
@click.pass_obj
@handle_errors
def queues_resume(obj: Context, queue: str) -> None:
    """Let workers take jobs of QUEUE again."""
    _valid_queue(queue)
    changed = obj.store().queue_resume(queue)
    console.print(f"Queue {queue!r} {'resumed' if changed else 'was not paused'}.")


def _valid_queue(queue: str) -> None:
    try:
        check_queue_name(queue, "queue")
    except ValueError as exc:
        fail(str(exc), 2)


def _ts(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def _job_dict(r: JobResult) -> dict[str, Any]:
    return {
        "id": r.id,
        "status": str(r.status),
        "task_name": r.task_name,
        "queue_name": r.queue_name,
        "priority": r.priority,
        "args": r.args,
        "kwargs": r.kwargs,
        "enqueued_at": r.enqueued_at.isoformat() if r.enqueued_at else None,
        "scheduled_at": r.scheduled_at.isoformat() if r.scheduled_at else None,
        "started_at": r.started_at.isoformat() if r.started_at else None,
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
        "attempts": r.attempts,
        "crashes": r.crashes,
        "return_value": r.return_value,
        "errors": [
            {
                "class": e.exception_class,
                "message": e.message,
                "traceback": e.traceback,
                "at": e.at.isoformat() if e.at else None,
            }
            for e in r.errors
        ],
    }


# ---- recurring ----


@main.group()
def recurring() -> None:
    """List recurring tasks, or run one now."""


@recurring.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_obj
@handle_errors
def recurring_list(obj: Context, as_json: bool) -> None:
    """Recurring tasks with their schedule, last and next run (those of the config
    that no scheduler has registered yet too, marked so)."""
    from .recurring import COMMAND_TASK, row_from_config
    from .schedules import parse_schedule

    app = obj.app()
    configured = [row_from_config(rc) for rc in app.config.recurring]
    now = datetime.now(UTC)
    rows = []
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
                "last_run": task.last_run_at.isoformat() if task.last_run_at else None,
                "next_run": nxt,
                "description": task.description,
            }
        )
    if as_json:
        _print_json(rows)
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
@click.pass_obj
@handle_errors
def recurring_run_now(obj: Context, key: str) -> None:
    """Enqueue one run of recurring task KEY now, outside its schedule."""
    app = obj.app()
    try:
        job = app.recurring.run_now(key)
    except KeyError as exc:
        fail(str(exc.args[0]))
    console.print(f"Enqueued job {job.id} ({job.task_name}) for recurring task {key!r}.")
