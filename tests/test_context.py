"""Job-scoped state: nothing set by one job (or request) is seen by the next."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

import stalwart
from stalwart import JobStatus
from stalwart.contrib.starlette import CurrentMiddleware
from stalwart.testing import drain
from stalwart.web.client_ip import ClientIPMiddleware


class Current(stalwart.CurrentAttributes):
    tenant_id: int | None = None
    client_ip: str | None = None
    tags: list[str] = []  # a mutable default: each context gets its own copy


class LocalOnly(stalwart.CurrentAttributes, propagate=False):
    secret: str | None = None


request_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_var")
LEAK_JOBS = 10_000


def test_current_attributes_are_context_variables() -> None:
    def in_fresh_context() -> tuple[Any, ...]:
        before = (Current.tenant_id, list(Current.tags))
        Current.tenant_id = 5
        Current.tags.append("x")
        return before, Current.tenant_id, Current.values()

    first = contextvars.Context().run(in_fresh_context)
    second = contextvars.Context().run(in_fresh_context)
    assert first == second == ((None, []), 5, {"tenant_id": 5, "client_ip": None, "tags": ["x"]})
    with pytest.raises(AttributeError, match="declares no attribute 'nope'"):
        Current.set(nope=1)
    with pytest.raises(TypeError):
        Current()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_ten_thousand_jobs_on_one_thread_never_see_each_others_state(
    app: stalwart.App, kind: str
) -> None:
    """Every job reads, then sets, a ContextVar, a CurrentAttributes attribute and a
    threading.local (the latter cleaned by an on_job_end hook)."""
    local = threading.local()
    leaks: list[tuple[int, str]] = []
    ended: list[int] = []

    @app.on_job_end
    def clean_thread_local(job: stalwart.JobInfo) -> None:
        local.__dict__.clear()
        ended.append(1)

    def check_and_dirty(n: int) -> None:
        if request_var.get("unset") != "unset":
            leaks.append((n, "ContextVar"))
        if Current.tenant_id is not None or Current.tags:
            leaks.append((n, "CurrentAttributes"))
        if getattr(local, "user", None) is not None:
            leaks.append((n, "threading.local"))
        request_var.set(f"job {n}")
        Current.tenant_id = n
        Current.tags.append(f"job {n}")
        local.user = f"user {n}"

    if kind == "sync":

        @app.task(name="leak.sync")
        def job(n: int) -> None:
            check_and_dirty(n)
    else:

        @app.task(name="leak.async")
        async def job(n: int) -> None:  # type: ignore[misc]
            await asyncio.sleep(0)
            check_and_dirty(n)

    # The worker thread's own context must not reach jobs either.
    request_var.set("set by the test thread")
    app.enqueue_many(job, [((n,), {}) for n in range(LEAK_JOBS)])
    done = drain(app, threads=1, prefetch=500, timeout=240)
    assert done == LEAK_JOBS
    assert leaks == []
    assert len(ended) == LEAK_JOBS
    assert app.store.jobs_pending_count() == 0


def test_inline_call_runs_in_a_fresh_context_too(app: stalwart.App) -> None:
    @app.task
    def read() -> tuple[str, int | None]:
        value = (request_var.get("unset"), Current.tenant_id)
        request_var.set("dirty")
        Current.tenant_id = 99
        return value

    request_var.set("caller")
    Current.tenant_id = 1
    try:
        assert read.call() == ("unset", None)
        assert read.call() == ("unset", None)
        assert (request_var.get(), Current.tenant_id) == ("caller", 1)
    finally:
        Current.tenant_id = None


def test_enqueue_captures_attributes_and_the_job_sees_them(app: stalwart.App) -> None:
    seen: dict[int, Any] = {}

    @app.task
    def audit(n: int) -> None:
        seen[n] = (Current.tenant_id, Current.client_ip, LocalOnly.secret)

    def request(tenant: int) -> int:
        Current.tenant_id = tenant
        Current.client_ip = "203.0.113.7"
        LocalOnly.secret = "never stored"
        return audit.enqueue(1).id

    job_id = contextvars.Context().run(request, 42)
    # A second job, enqueued without a tenant, right after on the same thread.
    second = contextvars.Context().run(lambda: audit.enqueue(2).id)
    drain(app, threads=1)
    assert seen == {1: (42, "203.0.113.7", None), 2: (None, None, None)}
    assert app.get_result(job_id).status is JobStatus.SUCCESSFUL
    assert app.get_result(second).status is JobStatus.SUCCESSFUL


def test_a_job_enqueued_by_a_job_inherits_its_attributes(app: stalwart.App) -> None:
    seen: list[Any] = []

    @app.task
    def child() -> None:
        seen.append(Current.tenant_id)

    @app.task
    def parent() -> None:
        Current.tenant_id = 7
        child.enqueue()

    parent.enqueue()
    drain(app)
    assert seen == [7]


def test_non_json_attribute_is_refused_at_enqueue(app: stalwart.App) -> None:
    @app.task
    def noop() -> None: ...

    def body() -> None:
        Current.tenant_id = object()  # type: ignore[assignment]
        with pytest.raises(stalwart.SerializationError, match=r"Current\.tenant_id"):
            noop.enqueue()

    contextvars.Context().run(body)


def test_hooks_run_on_success_error_and_retry_and_see_the_job(app: stalwart.App) -> None:
    events: list[tuple[str, str, int]] = []

    @app.on_job_start
    def start(job: stalwart.JobInfo) -> None:
        events.append(("start", job.task_name, job.attempt))

    @app.on_job_end
    def end(job: stalwart.JobInfo) -> None:
        events.append(("end", job.task_name, job.attempt))

    @app.on_job_end
    def broken_cleanup(job: stalwart.JobInfo) -> None:
        raise RuntimeError("a failing hook must not stop the others")

    @app.task(name="ok")
    def ok() -> None: ...

    @app.task(name="bad", retry=stalwart.Retry(attempts=2, base=0, jitter=False))
    def bad() -> None:
        raise ValueError("x")

    ok.enqueue()
    drain(app, threads=1)
    bad.enqueue()
    drain(app, threads=1)
    assert events == [
        ("start", "ok", 1),
        ("end", "ok", 1),
        ("start", "bad", 1),
        ("end", "bad", 1),
        ("start", "bad", 2),
        ("end", "bad", 2),
    ]


def test_current_job_and_log_filter(app: stalwart.App, caplog: pytest.LogCaptureFixture) -> None:
    infos: list[stalwart.JobInfo] = []
    stopping: list[bool] = []
    log = logging.getLogger("tests.jobs")

    @app.task(name="logged", queue_name="q1")
    def logged() -> None:
        infos.append(stalwart.current_job())
        stopping.append(stalwart.current_job().shutting_down)
        log.warning("inside")

    with pytest.raises(LookupError, match="outside a running job"):
        stalwart.current_job()
    job = logged.enqueue()
    handler_filter = stalwart.JobLogFilter()
    caplog.handler.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.WARNING, logger="tests.jobs"):
            drain(app)
    finally:
        caplog.handler.removeFilter(handler_filter)
    [info] = infos
    assert (info.id, info.task_name, info.attempt, info.queue_name) == (job.id, "logged", 1, "q1")
    assert info.enqueued_at is not None and stopping == [False]
    [record] = [r for r in caplog.records if r.getMessage() == "inside"]
    assert (record.job_id, record.task_name, record.attempt, record.queue_name) == (  # type: ignore[attr-defined]
        job.id,
        "logged",
        1,
        "q1",
    )


def test_asgi_middleware_gives_each_request_a_fresh_context(app: stalwart.App) -> None:
    seen: dict[int, Any] = {}

    @app.task
    def audit() -> None:
        seen[stalwart.current_job().id or 0] = (Current.tenant_id, Current.client_ip)

    async def endpoint(request: Request) -> JSONResponse:
        before = {
            "var": request_var.get("unset"),
            "tenant": Current.tenant_id,
            "ip": Current.client_ip,
        }
        Current.tenant_id = int(request.query_params.get("tenant", "0")) or None
        request_var.set("dirty")
        job = await audit.aenqueue()
        return JSONResponse({"before": before, "job": job.id})

    web = Starlette(routes=[Route("/", endpoint)])
    wrapped = ClientIPMiddleware(
        CurrentMiddleware(web), trusted_proxies=["127.0.0.0/8"], forwarded_for=True
    )

    async def scenario() -> list[Any]:
        transport = httpx.ASGITransport(app=wrapped, client=("127.0.0.1", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            first = (
                await client.get("/?tenant=9", headers={"X-Forwarded-For": "198.51.100.4"})
            ).json()
            second = (await client.get("/")).json()
        return [first, second]

    first, second = asyncio.run(scenario())
    for response in (first, second):
        assert response["before"]["var"] == "unset"
        assert response["before"]["tenant"] is None
    assert first["before"]["ip"] == "198.51.100.4"
    assert second["before"]["ip"] == "127.0.0.1"
    drain(app)
    assert seen == {first["job"]: (9, "198.51.100.4"), second["job"]: (None, "127.0.0.1")}
