"""Django's tests/tasks/tasks.py (6.1), as upstream, plus tasks of our own tests."""

import time

from stalwart.contrib.django.compat import TaskContext
from stalwart.contrib.django.compat import task_backends as _backends  # noqa: F401

try:
    from django.tasks import task
except ImportError:  # Django 5.2 with the backport
    from django_tasks import task


@task()
def noop_task(*args, **kwargs):
    return None


@task
def noop_task_from_bare_decorator(*args, **kwargs):
    return None


@task()
async def noop_task_async(*args, **kwargs):
    return None


@task()
def calculate_meaning_of_life():
    return 42


@task()
def failing_task_value_error():
    raise ValueError("This Task failed due to ValueError")


@task()
def failing_task_system_exit():
    raise SystemExit("This Task failed due to SystemExit")


@task()
def failing_task_keyboard_interrupt():
    raise KeyboardInterrupt("This Task failed due to KeyboardInterrupt")


@task()
def complex_exception():
    raise ValueError(ValueError("This task failed"))


@task()
def complex_return_value():
    # Return something which isn't JSON serializable nor picklable.
    return lambda: True


@task()
def exit_task():
    exit(1)


@task()
def hang():
    """
    Do nothing for 5 minutes
    """
    time.sleep(300)


@task()
def sleep_for(seconds):
    time.sleep(seconds)


@task(takes_context=True)
def get_task_id(context):
    return context.task_result.id


@task(takes_context=True)
def test_context(context, attempt):
    assert isinstance(context, TaskContext)
    assert context.attempt == attempt


# ---- ours ----


@task()
def add_note(text):
    """Uses the ORM: a job that writes a row."""
    from .models import Note

    return Note.objects.create(text=text).pk


@task()
def count_notes():
    """Uses the ORM in the worker's thread (the hygiene test counts its connections)."""
    from .models import Note

    return Note.objects.count()


try:
    from stalwart import Retry

    @task(takes_context=True, retry=Retry(attempts=3, base=0, jitter=False))
    def flaky(context):
        """Fails on its first attempt, succeeds on its second; returns what it saw."""
        if context.attempt < 2:
            raise ConnectionError(f"attempt {context.attempt} failed")
        return {
            "attempt": context.attempt,
            "worker_ids": context.task_result.worker_ids,
            "errors": [e.exception_class_path for e in context.task_result.errors],
        }
except TypeError:  # a backend without Stalwart's options (not this suite's)
    pass
