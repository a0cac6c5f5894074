"""An application for the observability tests (metrics, traces) run by `stalwart start`
in a subprocess. With $STALWART_TEST_SPANS set it configures the OpenTelemetry SDK with
its in-memory exporter, and writes every finished span there too as one JSON line, so
the test process can read the spans of the worker processes."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

import stalwart

from .procapp import record

app = stalwart.App()
QUICK = stalwart.Retry(attempts=3, backoff="constant", base=0.05, jitter=False)


@app.task(name="obs.ok")
def ok(n: int) -> int:
    return n


@app.task(name="obs.flaky", retry=QUICK)
def flaky(n: int) -> int:
    """Fails its first attempt, then succeeds."""
    if stalwart.current_job().attempt == 1:
        raise RuntimeError(f"first attempt of {n} fails")
    return n


@app.task(name="obs.broken", retry=stalwart.Retry(attempts=2, backoff="constant", base=0.05))
def broken(n: int) -> None:
    raise ValueError(f"{n} is broken")


@app.task(name="obs.gone", discard_on=(KeyError,))
def gone(n: int) -> None:
    raise KeyError(n)


@app.task(name="obs.sleep")
def sleep(seconds: float) -> None:
    record("start")
    time.sleep(seconds)
    record("end")


@app.task(name="obs.traced")
def traced(fail: bool = False) -> str:
    if fail:
        raise RuntimeError("traced job fails")
    return "ok"


@app.task(name="obs.traced_async")
async def traced_async(fail: bool = False) -> str:
    await asyncio.sleep(0)
    if fail:
        raise RuntimeError("traced async job fails")
    return "ok"


def span_record(span: Any) -> dict[str, Any]:
    """What a test needs of a finished SDK span, as JSON."""
    ctx, parent = span.get_span_context(), span.parent
    return {
        "name": span.name,
        "kind": span.kind.name,
        "trace_id": format(ctx.trace_id, "032x"),
        "span_id": format(ctx.span_id, "016x"),
        "parent_id": format(parent.span_id, "016x") if parent else None,
        "attributes": dict(span.attributes or {}),
        "status": span.status.status_code.name,
        "events": [e.name for e in span.events],
        "pid": os.getpid(),
    }


if os.environ.get("STALWART_TEST_SPANS"):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class ToFile(SpanProcessor):
        def on_end(self, span: Any) -> None:
            line = (json.dumps(span_record(span)) + "\n").encode()
            fd = os.open(os.environ["STALWART_TEST_SPANS"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(ToFile())
    trace.set_tracer_provider(provider)
