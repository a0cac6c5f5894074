"""Job-scoped state: nothing set by one job or request is ever seen by the next.

Every job attempt runs in a new, empty `contextvars.Context` — not a copy of the
worker's — so a `ContextVar` set by one job cannot be read by another, on the same
thread or not. `CurrentAttributes` are context variables with declared defaults,
captured when a job is enqueued and restored inside it. What is not a context variable
(thread-locals, sessions, module caches) is reset by the app's hooks.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import inspect
import logging
import threading
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, TypeVar

from .serialization import check_json, dumps, loads

T = TypeVar("T")
log = logging.getLogger("stalwart")

_MISSING: Any = object()


class _CurrentMeta(type):
    """Routes reads and writes of declared attributes to context variables."""

    _vars: dict[str, contextvars.ContextVar[Any]]
    _defaults: dict[str, Any]

    def __getattr__(cls, name: str) -> Any:
        # Only reached for names not found on the class: the declared attributes.
        vars_ = type.__getattribute__(cls, "__dict__").get("_vars")
        if vars_ is None or name not in vars_:
            raise AttributeError(f"{cls.__name__} has no attribute {name!r}")
        var = vars_[name]
        value = var.get(_MISSING)
        if value is _MISSING:
            # Each context gets its own copy: a mutable default is never shared.
            value = copy.deepcopy(cls._defaults[name])
            var.set(value)
        return value

    def __setattr__(cls, name: str, value: Any) -> None:
        vars_ = cls.__dict__.get("_vars")
        if vars_ is not None and name in vars_:
            vars_[name].set(value)
        else:
            super().__setattr__(name, value)


class CurrentAttributes(metaclass=_CurrentMeta):
    """Per-job, per-request attributes, declared with defaults::

        class Current(stalwart.CurrentAttributes):
            tenant_id: int | None = None
            client_ip: str | None = None

    Read and set them on the class (``Current.tenant_id = 7``). Each job attempt and
    each web request (with the middleware) starts from the defaults. Values set when a
    job is enqueued travel with it and are restored before it runs; pass
    ``propagate=False`` in the class line to keep a class out of that.
    """

    _registry: ClassVar[dict[str, type[CurrentAttributes]]] = {}
    _propagate: ClassVar[bool] = True

    def __init_subclass__(cls, propagate: bool = True, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        names = [n for n in inspect.get_annotations(cls) if not n.startswith("_")]
        defaults = {}
        for name in names:
            defaults[name] = cls.__dict__.get(name)
            if name in cls.__dict__:
                type.__delattr__(cls, name)  # reads now go through the metaclass
        type.__setattr__(cls, "_defaults", defaults)
        type.__setattr__(
            cls,
            "_vars",
            {n: contextvars.ContextVar(f"{cls.__qualname__}.{n}") for n in names},
        )
        type.__setattr__(cls, "_propagate", propagate)
        CurrentAttributes._registry[f"{cls.__module__}.{cls.__qualname__}"] = cls

    def __init__(self) -> None:
        raise TypeError(f"{type(self).__name__} is used through the class, not instances")

    @classmethod
    def reset(cls) -> None:
        """Set every attribute back to its default in the current context."""
        for name, var in cls._vars.items():
            var.set(copy.deepcopy(cls._defaults[name]))

    @classmethod
    def values(cls) -> dict[str, Any]:
        return {name: getattr(cls, name) for name in cls._vars}

    @classmethod
    def set(cls, **values: Any) -> None:
        for name, value in values.items():
            if name not in cls._vars:
                raise AttributeError(f"{cls.__name__} declares no attribute {name!r}")
            cls._vars[name].set(value)


def capture_current() -> str | None:
    """The values set (not defaults) of every propagating class, as JSON, or None."""
    captured: dict[str, dict[str, Any]] = {}
    for key, cls in CurrentAttributes._registry.items():
        if not cls._propagate:
            continue
        set_values = {}
        for name, var in cls._vars.items():
            value = var.get(_MISSING)
            if value is not _MISSING and value != cls._defaults[name]:
                check_json(value, f"{cls.__name__}.{name}")
                set_values[name] = value
        if set_values:
            captured[key] = set_values
    return dumps(captured) if captured else None


# The key under which a job's trace context (W3C traceparent) travels in its captured
# context: not a class path, so never a class's.
TRACE_KEY = "stalwart:trace"


def restore_current(captured: str | Mapping[str, Any] | None) -> None:
    """Set captured attribute values in the current (fresh) context."""
    data = loads(captured) if isinstance(captured, str) else captured
    for key, values in (data or {}).items():
        if key == TRACE_KEY:
            continue
        cls = CurrentAttributes._registry.get(key)
        if cls is None:
            log.warning("captured context names %s, which this process has not imported", key)
            continue
        for name, value in values.items():
            if name in cls._vars:
                cls._vars[name].set(value)


class Flag(Protocol):
    def is_set(self) -> bool: ...


class JobWorkflow(Protocol):
    """What a running job asks of its batch, dependencies and progress (`workflows.py`)."""

    def batch(self) -> Any: ...
    def dependency_results(self) -> dict[int, Any]: ...
    def set_progress(self, done: float, total: float | None, message: str | None) -> None: ...
    def flush(self) -> None: ...


class WorkflowSource(Protocol):
    def job_workflow(self, job: JobInfo) -> JobWorkflow: ...


@dataclass
class JobInfo:
    """What a running job knows about itself: `stalwart.current_job()`."""

    id: int | None
    task_name: str
    attempt: int
    queue_name: str
    enqueued_at: datetime | None
    _shutdown: threading.Event = field(default_factory=threading.Event, repr=False)
    _cancel: Flag | None = field(default=None, repr=False)
    # The name of the worker running the attempt (None inline: `task.call()`).
    worker: str | None = None
    # The batch the job belongs to, if any.
    batch_id: int | None = None
    _app: WorkflowSource | None = field(default=None, repr=False)
    _workflow: JobWorkflow | None = field(default=None, repr=False)

    def workflow(self) -> JobWorkflow | None:
        """Made on first use (most jobs never ask): None outside a worker."""
        if self._workflow is None and self._app is not None and self.id is not None:
            self._workflow = self._app.job_workflow(self)
        return self._workflow

    @property
    def batch(self) -> Any:
        """The job's batch (a `stalwart.Batch`): ``.enqueue(...)`` adds jobs to it."""
        flow = self.workflow()
        if self.batch_id is None or flow is None:
            raise LookupError(f"job {self.id} is not part of a batch")
        return flow.batch()

    @property
    def dependency_results(self) -> dict[int, Any]:
        """The return value of each job this one depends on, by id."""
        flow = self.workflow()
        return {} if flow is None else flow.dependency_results()

    def set_progress(
        self, done: float, total: float | None = None, message: str | None = None
    ) -> None:
        """Report progress: stored at most once a second (the last value always, when
        the attempt ends); `JobResult.progress`, the CLI and the dashboard show it."""
        flow = self.workflow()
        if flow is not None:
            flow.set_progress(done, total, message)

    @property
    def shutting_down(self) -> bool:
        """True once the worker was asked to stop: finish up or raise to be retried."""
        return self._shutdown.is_set()

    @property
    def cancelled(self) -> bool:
        """True once someone cancelled this job (``app.cancel_job``): stop and return,
        or raise. If the job does not, `Cancelled` is raised in it."""
        return self._cancel is not None and self._cancel.is_set()


_current_job: contextvars.ContextVar[JobInfo] = contextvars.ContextVar("stalwart.current_job")


def current_job() -> JobInfo:
    """The job running in this context; raises LookupError outside a job."""
    try:
        return _current_job.get()
    except LookupError:
        raise LookupError("stalwart.current_job() was called outside a running job") from None


Hook = Callable[[JobInfo], None]
ErrorHook = Callable[[JobInfo, BaseException], None]


@dataclass
class Hooks:
    on_job_start: list[Hook] = field(default_factory=list)
    on_job_end: list[Hook] = field(default_factory=list)
    on_job_error: list[ErrorHook] = field(default_factory=list)


def in_job_context(job: JobInfo, captured: str | None, fn: Callable[[], T]) -> T:
    """Call ``fn`` in a new context set up as the job's (current_job, attributes),
    without the hooks: for what must run as the job once its own context is gone."""

    def body() -> T:
        _current_job.set(job)
        restore_current(captured)
        return fn()

    return contextvars.Context().run(body)


@contextmanager
def _job_scope(job: JobInfo, captured: str | None, hooks: Hooks) -> Iterator[None]:
    """Inside a fresh context: set the job, restore attributes, run the hooks."""
    _current_job.set(job)
    restore_current(captured)
    try:
        for hook in hooks.on_job_start:
            hook(job)
        yield
    finally:
        _run_end_hooks(job, hooks)


def _run_end_hooks(job: JobInfo, hooks: Hooks) -> None:
    # Always all of them: one failing cleanup must not skip the next.
    for hook in hooks.on_job_end:
        try:
            hook(job)
        except Exception:
            log.exception("on_job_end hook %r failed for job %s", hook, job.id)


def run_sync(
    fn: Callable[..., T],
    args: list[Any],
    kwargs: dict[str, Any],
    job: JobInfo,
    captured: str | None,
    hooks: Hooks,
) -> T:
    """Call ``fn`` in a new, empty context."""

    def body() -> T:
        # What _job_scope does, spelled out: this runs once per job, and a generator
        # context manager costs more than a no-op job.
        _current_job.set(job)
        if captured is not None:
            restore_current(captured)
        try:
            for hook in hooks.on_job_start:
                hook(job)
            return fn(*args, **kwargs)
        finally:
            if hooks.on_job_end:
                _run_end_hooks(job, hooks)

    return contextvars.Context().run(body)


def start_async(
    loop: asyncio.AbstractEventLoop,
    fn: Callable[..., Coroutine[Any, Any, T]],
    args: list[Any],
    kwargs: dict[str, Any],
    job: JobInfo,
    captured: str | None,
    hooks: Hooks,
) -> asyncio.Task[T]:
    """Start ``fn`` as a task of ``loop`` in a new, empty context (call from the loop)."""

    async def body() -> T:
        with _job_scope(job, captured, hooks):
            return await fn(*args, **kwargs)

    return loop.create_task(body(), context=contextvars.Context())


async def run_async_inline(
    fn: Callable[..., Coroutine[Any, Any, T]],
    args: list[Any],
    kwargs: dict[str, Any],
    job: JobInfo,
    captured: str | None,
    hooks: Hooks,
) -> T:
    """Await ``fn`` on the running loop, in a new, empty context."""
    return await start_async(asyncio.get_running_loop(), fn, args, kwargs, job, captured, hooks)


class JobLogFilter(logging.Filter):
    """Adds ``job_id``, ``task_name``, ``attempt`` and ``queue_name`` to every record.

    Outside a job they are None. Attach it to a handler::

        handler.addFilter(stalwart.JobLogFilter())
        logging.Formatter("%(job_id)s %(task_name)s %(message)s")
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if hasattr(record, "job_id"):  # the record names its job already (attempt lines)
            return True
        job = _current_job.get(None)
        record.job_id = job.id if job else None
        record.task_name = job.task_name if job else None
        record.attempt = job.attempt if job else None
        record.queue_name = job.queue_name if job else None
        return True
