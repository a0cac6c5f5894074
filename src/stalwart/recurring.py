"""Recurring tasks at run time: ``app.recurring.add/remove/list/run_now``.

Static tasks come from the config (``[recurring.NAME]``); tasks added here live in the
database until removed, and every scheduler picks them up within seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from .config import Config, RecurringConfig
from .errors import CommandNotConfigured, ConfigError
from .importing import import_attribute
from .names import check_priority, check_queue_name
from .results import JobResult
from .schedules import Schedule, parse_schedule
from .store import RecurringTaskRow

if TYPE_CHECKING:
    from .store import StoreProtocol
    from .tasks import Task

COMMAND_TASK = "stalwart.command"


@dataclass(frozen=True)
class RecurringTask:
    key: str
    schedule: str
    time_zone: str
    task_name: str | None
    command: str | None
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    queue_name: str | None
    priority: int | None
    missed: str
    missed_window: int
    description: str | None
    static: bool

    def parsed(self) -> Schedule:
        return parse_schedule(self.schedule, self.time_zone)

    def next_run(self, after: datetime | None = None) -> datetime:
        return self.parsed().next_after(after or datetime.now(UTC))

    @classmethod
    def from_row(cls, row: RecurringTaskRow) -> RecurringTask:
        return cls(
            key=row.key,
            schedule=row.schedule,
            time_zone=row.time_zone,
            task_name=row.task_name,
            command=row.command,
            args=tuple(row.args),
            kwargs=dict(row.kwargs or {}),
            queue_name=row.queue_name,
            priority=row.priority,
            missed=row.missed,
            missed_window=row.missed_window,
            description=row.description,
            static=row.static,
        )


def task_name_of(ref: str) -> str:
    """A task name from a config reference: a task name, or ``module:attribute`` of a
    task (imported to read its name, which may have been set with ``name=``)."""
    if ":" not in ref:
        return ref
    module, _, attr = ref.partition(":")
    try:
        obj = import_attribute(ref, "task")
    except ConfigError:
        return f"{module}.{attr}"
    name = getattr(obj, "name", None)
    return name if isinstance(name, str) else f"{module}.{attr}"


def row_from_config(rc: RecurringConfig) -> RecurringTaskRow:
    task = task_name_of(rc.task) if rc.task else None
    return RecurringTaskRow(
        key=rc.key,
        schedule=rc.schedule,
        time_zone=rc.time_zone,
        task_name=task,
        command=rc.command,
        args=tuple(rc.args),
        kwargs=dict(rc.kwargs),
        queue_name=rc.queue_name,
        priority=rc.priority,
        missed=rc.missed,
        missed_window=int(rc.missed_window),
        description=rc.description,
        static=True,
    )


class RecurringApp(Protocol):
    """What ``app.recurring`` needs of its App (`stalwart.App`)."""

    config: Config

    @property
    def store(self) -> StoreProtocol: ...

    def get_task(self, name: str) -> Task[Any, Any]: ...

    def enqueue(
        self,
        task: Task[Any, Any] | str,
        args: Sequence[Any] = (),
        kwargs: Mapping[str, Any] | None = None,
        *,
        queue_name: str | None = None,
        priority: int | None = None,
    ) -> JobResult: ...


class Recurring:
    """``app.recurring``: recurring tasks added and removed while the app runs."""

    def __init__(self, app: RecurringApp) -> None:
        self.app = app

    def add(
        self,
        key: str,
        task: Task[Any, Any] | str,
        schedule: str,
        *,
        args: tuple[Any, ...] | list[Any] = (),
        kwargs: dict[str, Any] | None = None,
        queue_name: str | None = None,
        priority: int | None = None,
        time_zone: str = "UTC",
        missed: str = "skip",
        missed_window: float = 86400,
        description: str | None = None,
    ) -> RecurringTask:
        """Add (or replace) the task ``key``: ``task`` runs on ``schedule`` (a cron line
        or a phrase like ``every 5 minutes``). ``missed`` says what to do with runs due
        while no scheduler was up: ``skip`` them, run only the ``latest``, or ``all`` of
        those within ``missed_window`` seconds."""
        name = task if isinstance(task, str) else task.name
        self.app.get_task(name)  # must be registered: fail here, not at 3 a.m.
        parse_schedule(schedule, time_zone)
        if missed not in ("skip", "latest", "all"):
            raise ValueError(f"missed must be 'skip', 'latest' or 'all', got {missed!r}")
        if queue_name is not None:
            check_queue_name(queue_name)
        if priority is not None:
            check_priority(priority)
        from .serialization import check_json

        check_json(list(args), "recurring args")
        check_json(kwargs or {}, "recurring kwargs")
        row = RecurringTaskRow(
            key=key,
            schedule=schedule,
            time_zone=time_zone,
            task_name=name,
            args=tuple(args),
            kwargs=dict(kwargs or {}),
            queue_name=queue_name,
            priority=priority,
            missed=missed,
            missed_window=int(missed_window),
            description=description,
            static=False,
        )
        self.app.store.recurring_upsert(row)
        return RecurringTask.from_row(row)

    def remove(self, key: str) -> bool:
        return self.app.store.recurring_remove(key)

    def list(self) -> list[RecurringTask]:
        return [RecurringTask.from_row(r) for r in self.app.store.recurring_list()]

    def get(self, key: str) -> RecurringTask:
        """The task ``key``: as stored, else as configured (before a scheduler synced it)."""
        for task in self.list():
            if task.key == key:
                return task
        for rc in self.app.config.recurring:
            if rc.key == key:
                return RecurringTask.from_row(row_from_config(rc))
        raise KeyError(f"no recurring task {key!r}")

    def run_now(self, key: str) -> JobResult:
        """Enqueue one run of ``key`` now (outside its schedule)."""
        return self.enqueue(self.get(key))

    def enqueue(self, task: RecurringTask) -> JobResult:
        name, args, kwargs = self.job_of(task)
        return self.app.enqueue(
            name, args, kwargs, queue_name=task.queue_name, priority=task.priority
        )

    @staticmethod
    def job_of(task: RecurringTask) -> tuple[str, tuple[Any, ...], dict[str, Any]]:
        if task.command is not None:
            # Only the key: the code is looked up in the loaded config when it runs.
            return COMMAND_TASK, (task.key,), {}
        assert task.task_name is not None
        return task.task_name, task.args, task.kwargs


def run_command(commands: Mapping[str, str], key: str) -> None:
    """The task behind ``command = "..."`` recurring entries. The job carries only the
    entry's key; the code comes from the config this process loaded (trusted, like the
    rest of it), never from the job row, so writing a job row cannot run code."""
    code = commands.get(key)
    if code is None:
        raise CommandNotConfigured(
            f"job of {COMMAND_TASK} names recurring entry {key!r}, which has no command in "
            "the configuration this worker loaded; nothing was run"
        )
    exec(compile(code, f"<recurring command {key}>", "exec"), {"__name__": "__stalwart_command__"})
