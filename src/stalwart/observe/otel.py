"""OpenTelemetry spans (opentelemetry-api only; the ``otel`` extra), following the
messaging semantic conventions.

- Enqueue opens a PRODUCER span ``send {queue}`` and stores the W3C trace context
  (the global propagator's carrier: ``traceparent``, ``tracestate``, baggage) with the
  job, in its captured context.
- The worker opens a CONSUMER span ``process {task}`` as a child of it, around the
  job's function, current while the job runs (the job's own spans nest under it); an
  error sets the span's status to ERROR and records the exception.

Imported only when the application has imported ``opentelemetry.trace`` (`tracing.py`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import metadata
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import (
    NoOpTracerProvider,
    ProxyTracerProvider,
    Span,
    SpanKind,
    Status,
    StatusCode,
)

__all__ = ["Otel", "active"]

SYSTEM = "stalwart"


class Otel:
    def __init__(self, provider: trace.TracerProvider) -> None:
        self.provider = provider
        self.tracer = provider.get_tracer("stalwart", _version())

    @contextmanager
    def send(self, queue: str, task: str, count: int) -> Iterator[tuple[Span, dict[str, str]]]:
        """The PRODUCER span of an enqueue, and the carrier to store with its jobs."""
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "send",
            "messaging.operation.name": "send",
            "messaging.destination.name": queue,
            "messaging.stalwart.task_name": task,
        }
        if count != 1:
            attributes["messaging.batch.message_count"] = count
        with self.tracer.start_as_current_span(
            f"send {queue}", kind=SpanKind.PRODUCER, attributes=attributes
        ) as span:
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            yield span, carrier

    def sent(self, span: Span, ids: Sequence[int]) -> None:
        if len(ids) == 1:
            span.set_attribute("messaging.message.id", str(ids[0]))

    @contextmanager
    def process(
        self, carrier: dict[str, str], job_id: int | None, task: str, queue: str, attempt: int
    ) -> Iterator[Span]:
        """The CONSUMER span of an attempt, current inside it."""
        parent = propagate.extract(carrier) if carrier else None
        attributes: dict[str, Any] = {
            "messaging.system": SYSTEM,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.destination.name": queue,
            "messaging.message.id": str(job_id),
            "messaging.stalwart.task_name": task,
            "messaging.stalwart.attempt": attempt,
        }
        with self.tracer.start_as_current_span(
            f"process {task}",
            context=parent,
            kind=SpanKind.CONSUMER,
            attributes=attributes,
            record_exception=False,  # recorded below, as the attempt's error
            set_status_on_exception=False,
        ) as span:
            yield span

    def failed(self, span: Span, error: BaseException) -> None:
        span.record_exception(error)
        span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))


def _version() -> str | None:
    try:
        return metadata.version("stalwart")
    except metadata.PackageNotFoundError:  # run from a checkout without installing
        return None


_active: Otel | None = None


def active() -> Otel | None:
    """Stalwart's tracer on the configured provider, or None if none is configured."""
    global _active
    provider = trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider | NoOpTracerProvider):
        return None
    if _active is None or _active.provider is not provider:
        _active = Otel(provider)
    return _active
