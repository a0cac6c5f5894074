"""What every command shares: the context (config, store, app), the options more than
one command takes, error handling with the documented exit codes, and output helpers.

Exit codes: 0 ok, 1 runtime failure (including an unreachable database), 2 usage or
configuration error.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
from rich.console import Console
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from ..app import App
from ..config import Config, load_config
from ..errors import ConfigError, DatabaseUnavailable, StalwartError
from ..importing import import_attribute
from ..names import parse_job_id
from ..observe.logs import configure_logging
from ..recurring import COMMAND_TASK
from ..results import JobResult
from ..store import QueueSelector, Store, open_store

__all__ = [
    "JOB_ID",
    "Context",
    "audit",
    "call_options",
    "check_recurring_tasks",
    "config_option",
    "console",
    "database_option",
    "err",
    "fail",
    "handle_errors",
    "import_app",
    "iso",
    "job_dict",
    "json_option",
    "one_line",
    "os_user",
    "parse_call",
    "print_json",
    "redacted_url",
    "require_migrated",
    "ts",
    "unlistened_queues",
]

F = TypeVar("F", bound=Callable[..., Any])
# Piped or redirected, tables are as wide as they need (rich would cut them to 80).
_WIDE = 100_000
console = Console(width=None if sys.stdout.isatty() else _WIDE)
err = Console(stderr=True, width=None if sys.stderr.isatty() else _WIDE)


class Context:
    """``ctx.obj`` of every command: the global options, and what they lead to."""

    def __init__(
        self,
        config_path: str | None,
        database: str | None,
        *,
        log_level: str | None = None,
        log_format: str | None = None,
    ) -> None:
        self.config_path = config_path
        self.database = database
        # As given on the command line (None: not given).
        self.log_level, self.log_format = log_level, log_format
        self._config: Config | None = None

    def apply_logging(self, config: Config | None = None) -> None:
        """Log as the command line says, else as ``config`` says (the serving commands
        pass theirs), else warnings as text."""
        level = self.log_level or (config.log_level if config else "WARNING")
        fmt = self.log_format or (config.log_format if config else "text")
        configure_logging(level, fmt.lower())

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, overrides={"database_url": self.database})
        return self._config

    def store(self) -> Store:
        return open_store(self.config.database_url, **self.config.store_options())

    def app(self) -> App:
        """The user's app (its tasks registered), or a bare one if none is configured;
        its config is the command line's view (file, environment, flags)."""
        if self.config.app is None:
            return App(config=self.config)
        app = import_app(self.config.app)
        app.config = self.config
        return app

    def dashboard_auth(self) -> Any:
        """Who may use `stalwart dashboard`: None here (users come from the environment);
        a host's context (`manage.py stalwart`) signs in its own users."""
        return None


# ---- options taken by more than one command ----


def config_option(help: str = "Config file (same as the global --config).") -> Callable[[F], F]:
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False), default=None, help=help
    )


def database_option(help: str) -> Callable[[F], F]:
    return click.option("--database", default=None, metavar="URL", help=help)


def json_option(help: str | None = None) -> Callable[[F], F]:
    return click.option("--json", "as_json", is_flag=True, help=help)


def call_options(fn: F) -> F:
    """``--args`` and ``--kwargs``: the arguments of a task, as JSON (`parse_call`)."""
    fn = click.option(
        "--kwargs", "kwargs_json", default="{}", help="JSON object of keyword arguments."
    )(fn)
    fn = click.option(
        "--args", "args_json", default="[]", help="JSON list of positional arguments."
    )(fn)
    return fn


def parse_call(args_json: str, kwargs_json: str) -> tuple[list[Any], dict[str, Any]]:
    """The arguments of ``--args`` and ``--kwargs``; exit 2 unless a list and an object."""
    try:
        args, kwargs = json.loads(args_json), json.loads(kwargs_json)
    except json.JSONDecodeError as exc:
        fail(f"--args/--kwargs must be JSON: {exc}", 2)
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        fail("--args must be a JSON list and --kwargs a JSON object", 2)
    return args, kwargs


if TYPE_CHECKING:  # generic in newer click only
    _IntParam = click.ParamType[int]
    _PrefetchParam = click.ParamType[int | str]
else:
    _IntParam = _PrefetchParam = click.ParamType


class JobIdType(_IntParam):
    """A job id on the command line: a number any id column can hold, else exit 2."""

    name = "JOB_ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        try:
            return parse_job_id(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


JOB_ID = JobIdType()


class PrefetchType(_PrefetchParam):
    """A worker prefetch on the command line: "auto" or an integer >= 0."""

    name = "auto|N"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> int | str:
        if isinstance(value, int) and value >= 0:
            return value
        text = str(value).strip()
        if text == "auto" or (text.isdigit() and int(text) <= 100_000):
            return text if text == "auto" else int(text)
        self.fail(f'expected "auto" or an integer from 0 to 100000, got {value!r}', param, ctx)


PREFETCH = PrefetchType()


# ---- the app, the schema, the config ----


def import_app(path: str) -> App:
    """Import ``module:attribute``; ConfigError naming what failed."""
    obj = import_attribute(path, "app")
    if not isinstance(obj, App):
        raise ConfigError([f"app: {path!r} is a {type(obj).__name__}, not a stalwart.App"])
    return obj


def require_migrated(app_or_store: App | Store) -> None:
    """Exit 2, saying what to run, unless the database's schema is up to date."""
    store = app_or_store.store if isinstance(app_or_store, App) else app_or_store
    pending = store.pending_migrations()
    if pending:
        fail(f"the database needs migrations {', '.join(pending)}: run `stalwart migrate`", 2)


def unlistened_queues(app: App) -> list[str]:
    """One line per queue the app's tasks (or recurring entries) enqueue to that no
    configured worker listens to: its jobs would wait for a worker of another config."""
    patterns = [QueueSelector(w.queues) for w in app.config.workers]
    used: dict[str, str] = {}
    for name, task in sorted(app.tasks.items()):
        if name != COMMAND_TASK:
            used.setdefault(task.options.queue_name, f"task {name}")
    for rc in app.config.recurring:
        if rc.queue_name:
            used.setdefault(rc.queue_name, f"recurring.{rc.key}")
    listened = sorted({p for w in app.config.workers for p in w.queues})
    return [
        f"queue {queue!r} ({who}) is listened to by no configured worker "
        f"(they take {', '.join(listened) or 'nothing'}): its jobs wait for another host's"
        for queue, who in sorted(used.items())
        if not any(sel.matches(queue) for sel in patterns)
    ]


def check_recurring_tasks(config: Config) -> list[str]:
    """Each recurring task must name a task the app registers (schedules are checked
    when the config loads)."""
    if not config.recurring or not config.app:
        return []
    try:
        app = import_app(config.app)
    except ConfigError:
        return []  # reported already
    app.config = config
    return app.check_recurring()


# ---- errors ----


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
            fail(f"cannot use the database: {one_line(exc)}")
        except DBAPIError as exc:
            fail(f"database error: {one_line(exc)}")
        except StalwartError as exc:
            fail(str(exc))

    return wrapper  # type: ignore[return-value]


def redacted_url(url: str) -> str:
    """A database URL fit to print: its password hidden."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def one_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    text = " ".join(str(orig).split())
    if "does not exist" in text or "Unknown database" in text:
        text += " (create it first, then run `stalwart migrate`)"
    elif "no such table" in text or "doesn't exist" in text:
        text += " (run `stalwart migrate`)"
    return text


# ---- output ----


def iso(value: datetime | None) -> str | None:
    """A time in ISO 8601 with its offset (the store's naive times are UTC)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso(value)
    return str(value)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_json_default))


def os_user() -> str:
    """Who runs this command, for the audit log: the operating-system user."""
    try:
        return getpass.getuser()
    except Exception:  # no name for this uid (a bare container)
        return f"uid {os.getuid()}"


def audit(
    store: Store,
    action: str,
    *,
    target: str | None = None,
    job_ids: Sequence[int] = (),
    affected: int = 0,
) -> None:
    """Write a command-line action to the dashboard's audit log, as "<user> (cli)"."""
    store.audit_record(
        actor=f"{os_user()} (cli)",
        client_ip=None,
        action=action,
        target=target,
        job_ids=job_ids,
        affected=affected,
    )


def ts(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value is not None else ""


def job_dict(r: JobResult) -> dict[str, Any]:
    return {
        "id": r.id,
        "status": str(r.status),
        "task_name": r.task_name,
        "queue_name": r.queue_name,
        "priority": r.priority,
        "args": r.args,
        "kwargs": r.kwargs,
        "enqueued_at": iso(r.enqueued_at),
        "scheduled_at": iso(r.scheduled_at),
        "started_at": iso(r.started_at),
        "finished_at": iso(r.finished_at),
        "attempts": r.attempts,
        "crashes": r.crashes,
        "batch_id": r.batch_id,
        "progress": r.progress,
        "return_value": r.return_value,
        "errors": [
            {
                "class": e.exception_class,
                "message": e.message,
                "traceback": e.traceback,
                "at": iso(e.at),
            }
            for e in r.errors
        ],
    }
