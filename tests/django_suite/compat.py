"""Names the ported tests use, from django.tasks (Django 6) or the backport (5.2)."""

from stalwart.contrib.django.compat import LOGGER_NAME  # noqa: F401

try:
    from django.tasks import (
        DEFAULT_TASK_QUEUE_NAME,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django.tasks.backends.immediate import ImmediateBackend
    from django.tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task
    from django.tasks.exceptions import (
        InvalidTask,
        InvalidTaskBackend,
        TaskResultDoesNotExist,
        TaskResultMismatch,
    )
except ImportError:
    from django_tasks import (  # noqa: F401
        DEFAULT_TASK_QUEUE_NAME,
        TaskResultStatus,
        default_task_backend,
        task,
        task_backends,
    )
    from django_tasks.backends.immediate import ImmediateBackend
    from django_tasks.base import TASK_MAX_PRIORITY, TASK_MIN_PRIORITY, Task  # noqa: F401
    from django_tasks.exceptions import (  # noqa: F401
        InvalidTaskBackendError as InvalidTaskBackend,
    )
    from django_tasks.exceptions import (  # noqa: F401
        InvalidTaskError as InvalidTask,
    )
    from django_tasks.exceptions import TaskResultDoesNotExist, TaskResultMismatch  # noqa: F401

IMMEDIATE = f"{ImmediateBackend.__module__}.ImmediateBackend"
STALWART = "stalwart.contrib.django.StalwartBackend"


def run_jobs() -> int:
    """A real worker (and dispatcher) until nothing is left to run."""
    from stalwart.contrib.django import stalwart_backend
    from stalwart.testing import drain

    return drain(stalwart_backend().app, polling_interval=0.005)


async def arun_jobs() -> int:
    from asgiref.sync import sync_to_async

    return await sync_to_async(run_jobs, thread_sensitive=False)()
