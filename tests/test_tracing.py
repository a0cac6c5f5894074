"""OpenTelemetry: enqueue's PRODUCER span and the worker's CONSUMER span share one
trace, the consumer a child of the producer, sync and async, in one process and across
a real process boundary (`stalwart start` in a subprocess). Checked with the SDK's
in-memory exporter."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import stalwart
from stalwart.testing import drain

from .fleet import Fleet, stop
from .helpers import wait_for


@pytest.fixture
def spans(monkeypatch: pytest.MonkeyPatch) -> Iterator[InMemorySpanExporter]:
    """A configured tracer provider for this test only (the global one is set once per
    process, so it is patched in, not set)."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: provider)
    yield exporter
    provider.shutdown()


def by_kind(exporter: InMemorySpanExporter, kind: str) -> list[Any]:
    return [s for s in exporter.get_finished_spans() if s.kind.name == kind]


def test_consumer_span_is_a_child_of_the_enqueue_sync_and_async(
    app: stalwart.App, spans: InMemorySpanExporter
) -> None:
    @app.task(name="trace.sync", queue_name="mail")
    def sync_job(fail: bool) -> None:
        # The job's own spans nest under the consumer span.
        with trace.get_tracer_provider().get_tracer("job").start_as_current_span("inner"):
            if fail:
                raise RuntimeError("sync fails")

    @app.task(name="trace.async")
    async def async_job(fail: bool) -> None:
        if fail:
            raise RuntimeError("async fails")

    jobs = [sync_job.enqueue(False), sync_job.enqueue(True), async_job.enqueue(False)]
    jobs.append(async_job.enqueue(True))
    drain(app)
    producers = by_kind(spans, "PRODUCER")
    consumers = {s.attributes["messaging.message.id"]: s for s in by_kind(spans, "CONSUMER")}
    assert len(producers) == 4 and len(consumers) == 4
    for producer, job in zip(producers, jobs, strict=True):
        consumer = consumers[str(job.id)]
        assert producer.attributes["messaging.message.id"] == str(job.id)
        assert consumer.context.trace_id == producer.context.trace_id
        assert consumer.parent is not None and consumer.parent.span_id == producer.context.span_id
        assert consumer.attributes["messaging.system"] == "stalwart"
        assert consumer.attributes["messaging.destination.name"] == job.queue_name
        assert consumer.attributes["messaging.stalwart.attempt"] == 1
        assert consumer.name == f"process {job.task_name}"
        assert producer.name == f"send {job.queue_name}"
        failed = job.args == [True]
        assert consumer.status.status_code.name == ("ERROR" if failed else "UNSET")
        assert [e.name for e in consumer.events] == (["exception"] if failed else [])
    inner = [s for s in spans.get_finished_spans() if s.name == "inner"]
    sync_consumers = {consumers[str(j.id)].context.span_id for j in jobs[:2]}
    assert {s.parent.span_id for s in inner} == sync_consumers
    # The trace context travels with the job, readable on its page.
    assert "traceparent" in (app.store.job_get(jobs[0].id).context or "")


def test_enqueue_many_is_one_producer_span_for_the_batch(
    app: stalwart.App, spans: InMemorySpanExporter
) -> None:
    @app.task(name="trace.batch")
    def batch(n: int) -> None:
        pass

    app.enqueue_many(batch, [((i,), {}) for i in range(5)])
    drain(app)
    [producer] = by_kind(spans, "PRODUCER")
    assert producer.attributes["messaging.batch.message_count"] == 5
    consumers = by_kind(spans, "CONSUMER")
    assert len(consumers) == 5
    assert {c.parent.span_id for c in consumers} == {producer.context.span_id}


def test_no_provider_no_trace_context(app: stalwart.App) -> None:
    @app.task(name="trace.none")
    def none() -> None:
        pass

    job = none.enqueue()
    assert app.store.job_get(job.id).context is None


@pytest.mark.slow
def test_the_trace_crosses_a_real_process_boundary(
    fleet: Fleet, spans: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from tests.apps.obsapp import app as obsapp

    span_file = tmp_path / "spans.jsonl"
    monkeypatch.setenv("STALWART_TEST_SPANS", str(span_file))
    fleet.app.tasks.update(obsapp.tasks)
    fleet.configure(app="tests.apps.obsapp:app")
    jobs = [
        fleet.app.enqueue("obs.traced", [False]),
        fleet.app.enqueue("obs.traced", [True]),
        fleet.app.enqueue("obs.traced_async", [False]),
        fleet.app.enqueue("obs.traced_async", [True]),
    ]
    sup = fleet.start()

    def consumers() -> dict[str, dict[str, Any]]:
        if not span_file.exists():
            return {}
        lines = [json.loads(line) for line in span_file.read_text().splitlines()]
        return {
            s["attributes"]["messaging.message.id"]: s for s in lines if s["kind"] == "CONSUMER"
        }

    try:
        wait_for(lambda: len(consumers()) == 4, 60, what="the four consumer spans")
    finally:
        out = stop(sup)
    assert sup.returncode == 0, out
    producers = {s.attributes["messaging.message.id"]: s for s in by_kind(spans, "PRODUCER")}
    for job in jobs:
        producer, consumer = producers[str(job.id)], consumers()[str(job.id)]
        assert consumer["pid"] != os.getpid()
        assert consumer["trace_id"] == format(producer.context.trace_id, "032x")
        assert consumer["parent_id"] == format(producer.context.span_id, "016x")
        assert consumer["name"] == f"process {job.task_name}"
        failed = job.args == [True]
        assert consumer["status"] == ("ERROR" if failed else "UNSET")
        assert consumer["events"] == (["exception"] if failed else [])
