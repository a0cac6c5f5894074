"""`StalwartBackend`: Django's task backend contract on Stalwart.

    TASKS = {"default": {"BACKEND": "stalwart.contrib.django.StalwartBackend",
                         "QUEUES": ["default", "mail"], "OPTIONS": {...}}}

Enqueue stores a job (in the caller's transaction when Django's connection is in
``atomic()`` and Stalwart's database is Django's); workers (`manage.py stalwart start`)
run it; `get_result` reads it back as Django's `TaskResult`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.conf import settings
from django.core import checks
from django.utils import timezone
from django.utils.module_loading import import_string

from ...errors import ConfigError, JobNotFound
from ...names import check_queue_name
from ...policies import Limit, Retry
from .application import DjangoApp
from .borrowed import borrow
from .compat import (
    BaseTaskBackend,
    InvalidTask,
    Task,
    TaskResultDoesNotExist,
    normalize_json,
    task_enqueued,
)
from .config import build_config, django_database_url, same_database
from .results import parse_id, to_task_result
from .runner import register_task


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class StalwartTask(Task):  # type: ignore[misc,valid-type]
    """Django's Task with Stalwart's options, for ``@task(retry=..., concurrency=...)``:

    - ``retry``: `stalwart.Retry` (default: one attempt);
    - ``discard_on``: exceptions that end the job at once, as done;
    - ``on_crash`` ("retry" or "fail") and ``max_crashes``: a job whose worker died;
    - ``concurrency``: a `stalwart.Limit` or a tuple of them.
    """

    retry: Retry | None = None
    discard_on: tuple[type[BaseException], ...] = ()
    on_crash: str = "retry"
    max_crashes: int | None = None
    concurrency: Limit | tuple[Limit, ...] = ()

    # Pickled by module path, as Django 6.1 pickles its tasks (the backport for Django
    # 5.2 does not): results pickle on both.
    @classmethod
    def _reconstruct(cls, kwargs: dict[str, Any]) -> StalwartTask:
        func_path = kwargs["func"]
        try:
            kwargs["func"] = import_string(func_path).func
        except (ImportError, AttributeError) as exc:
            raise ValueError(f"Expected {func_path!r} to point to a Task instance.") from exc
        return cls(**kwargs)

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        kwargs = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        kwargs["func"] = self.module_path
        return (type(self)._reconstruct, (kwargs,))


class StalwartBackend(BaseTaskBackend):  # type: ignore[misc,valid-type]
    task_class = StalwartTask

    supports_defer = True
    supports_async_task = True
    supports_get_result = True
    supports_priority = True

    def __init__(self, alias: str, params: dict[str, Any]) -> None:
        super().__init__(alias, params)
        config, self.database_alias, explicit_url = build_config(alias, self.options)
        self.follows_django = not explicit_url
        self.app = DjangoApp(self, config)
        # Django task objects seen by validate_task, by module path.
        self.known_tasks: dict[str, Any] = {}

    # ---- the database: Django's own, unless OPTIONS say otherwise ----

    def current_database_url(self) -> str:
        if self.follows_django:
            return django_database_url(self.database_alias)
        return self.app.config.database_url

    def database_settings_key(self) -> object:
        """What of Django's settings for the database the URL is made of (cheap)."""
        from django.db import connections

        s = connections[self.database_alias].settings_dict
        return (s.get("NAME"), s.get("HOST"), s.get("PORT"), s.get("USER"), s.get("PASSWORD"))

    def shares_django_database(self) -> bool:
        if self.follows_django:
            return True
        try:
            return same_database(
                self.app.config.database_url, django_database_url(self.database_alias)
            )
        except ConfigError:
            return False

    def _django_connection_in_atomic(self) -> Any:
        """Django's connection when it is in ``atomic()`` on Stalwart's database."""
        from django.db import connections

        conn = connections[self.database_alias]
        if conn.in_atomic_block and self.shares_django_database():
            return conn
        return None

    # ---- the contract ----

    def validate_task(self, task: Any) -> None:
        super().validate_task(task)
        try:
            check_queue_name(task.queue_name)
        except ValueError as exc:
            raise InvalidTask(str(exc)) from None
        if isinstance(task, StalwartTask) and task.on_crash not in ("retry", "fail"):
            raise InvalidTask(f"on_crash must be 'retry' or 'fail', got {task.on_crash!r}")
        if task.module_path not in self.known_tasks:
            self.known_tasks[task.module_path] = task
            register_task(self, task)

    def resolve_task(self, module_path: str) -> Any:
        """The Django task named ``module_path`` (imported if not seen yet)."""
        try:
            found = import_string(module_path)
        except ImportError as exc:
            found = self.known_tasks.get(module_path)
            if found is None:
                raise InvalidTask(
                    f"{module_path!r} is not a task this process can import: {exc}"
                ) from exc
        if not isinstance(found, Task):
            raise InvalidTask(f"{module_path!r} is not a Django task")
        if found.backend != self.alias and found.module_path not in self.known_tasks:
            found = found.using(backend=self.alias)
        if found.module_path not in self.known_tasks:
            self.validate_task(found)
        return found

    def enqueue(self, task: Any, args: Sequence[Any], kwargs: dict[str, Any]) -> Any:
        self.validate_task(task)
        args = normalize_json(args)
        kwargs = normalize_json(kwargs)
        run_after = _utc(task.run_after)
        stalwart_task = self.app.get_task(task.module_path)
        options = {"priority": task.priority, "queue_name": task.queue_name}
        django_conn = self._django_connection_in_atomic()
        if django_conn is not None:
            with borrow(django_conn) as conn:
                job = self.app.enqueue(
                    stalwart_task, args, kwargs, connection=conn, run_after=run_after, **options
                )
        else:
            job = self.app.enqueue(stalwart_task, args, kwargs, run_after=run_after, **options)
        result = to_task_result(self, job)
        if task != result.task:  # keep exactly the task enqueued (run_after as given)
            object.__setattr__(result, "task", task)
        task_enqueued.send(type(self), task_result=result)
        return result

    def get_result(self, result_id: str) -> Any:
        job_id = parse_id(result_id)
        try:
            job = self.app.get_result(job_id)
        except JobNotFound:
            raise TaskResultDoesNotExist(f"no task result with id {result_id!r}") from None
        return to_task_result(self, job)

    def check(self, **kwargs: Any) -> list[Any]:
        messages = list(super().check(**kwargs))
        if "stalwart.contrib.django" not in settings.INSTALLED_APPS:
            messages.append(
                checks.Warning(
                    "stalwart.contrib.django is not in INSTALLED_APPS: `manage.py stalwart` "
                    "and the database checks are missing",
                    hint='INSTALLED_APPS += ["stalwart.contrib.django"]',
                    id="stalwart.W001",
                )
            )
        return messages


def _utc(run_after: datetime | None) -> datetime | None:
    """An aware time for Stalwart; a naive one (USE_TZ = False) is Django's local time."""
    if run_after is None or timezone.is_aware(run_after):
        return run_after
    made: datetime = timezone.make_aware(run_after, timezone.get_default_timezone())
    return made
