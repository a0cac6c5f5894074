"""Workflows through the App, with a real worker (``drain``) on each database: batches
and their callbacks, fan-out, dependencies, chains, progress."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

import stalwart
from stalwart import BatchStatus, JobStatus
from stalwart.testing import drain

from .helpers import count


class Calls:
    """What the callbacks were called with, in this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seen: list[tuple[str, dict[str, Any]]] = []

    def add(self, name: str, kwargs: dict[str, Any]) -> None:
        with self.lock:
            self.seen.append((name, kwargs))

    def names(self) -> list[str]:
        return sorted(n for n, _ in self.seen)


@pytest.fixture
def calls() -> Calls:
    return Calls()


def callbacks(app: stalwart.App, calls: Calls) -> dict[str, stalwart.Task[Any, Any]]:
    @app.task(name="wf.on_success")
    def on_success(batch_id: int, month: int = 0) -> None:
        calls.add("success", {"batch_id": batch_id, "month": month})

    @app.task(name="wf.on_finish")
    def on_finish(batch_id: int) -> None:
        calls.add("finish", {"batch_id": batch_id})

    @app.task(name="wf.on_failure")
    def on_failure(batch_id: int) -> None:
        calls.add("failure", {"batch_id": batch_id})

    return {"success": on_success, "finish": on_finish, "failure": on_failure}


def test_a_batch_runs_on_success_and_on_finish_once_with_its_id(
    app: stalwart.App, calls: Calls
) -> None:
    cb = callbacks(app, calls)

    @app.task
    def invoice(n: int) -> int:
        return n

    with app.batch(
        on_success=cb["success"].prepare(month=11),
        on_finish=cb["finish"].prepare(),
        on_failure=cb["failure"].prepare(),
        description="November invoices",
    ) as batch:
        jobs = [invoice.enqueue(i) for i in range(5)]
        many = app.enqueue_many(invoice, [((i,), {}) for i in range(5)])
    assert all(j.batch_id == batch.id for j in jobs)
    assert app.get_batch(batch.id).status is BatchStatus.RUNNING
    drain(app)
    assert calls.names() == ["finish", "success"]
    assert ("success", {"batch_id": batch.id, "month": 11}) in calls.seen
    result = app.get_batch(batch.id)
    assert (result.total, result.pending, result.succeeded, result.failed) == (10, 0, 10, 0)
    assert result.status is BatchStatus.SUCCEEDED and result.description == "November invoices"
    assert result.finished_at is not None and result.created_at is not None
    fired = {c.on: c.job_id for c in result.callbacks}
    assert fired["failure"] is None and fired["success"] is not None
    assert app.get_result(many[0].id).batch_id == batch.id


def test_a_batch_with_a_failure_runs_on_failure_and_on_finish_but_not_on_success(
    app: stalwart.App, calls: Calls
) -> None:
    cb = callbacks(app, calls)

    @app.task
    def maybe(fail: bool) -> None:
        if fail:
            raise ValueError("no")

    with app.batch(
        on_success=cb["success"].prepare(),
        on_finish=cb["finish"].prepare(),
        on_failure=cb["failure"].prepare(),
    ) as batch:
        app.enqueue_many([maybe.prepare(False), maybe.prepare(True), maybe.prepare(False)])
    drain(app)
    assert calls.names() == ["failure", "finish"]
    result = app.get_batch(batch.id)
    assert (result.succeeded, result.failed, result.status) == (2, 1, BatchStatus.FAILED)
    # A retried job of a finished batch does not run its callbacks again by default.
    assert app.retry_failed() == 1
    drain(app)
    assert calls.names() == ["failure", "finish"]


def test_an_empty_batch_finishes_at_once(app: stalwart.App, calls: Calls) -> None:
    cb = callbacks(app, calls)
    with app.batch(on_finish=cb["finish"].prepare()) as batch:
        pass
    assert app.get_batch(batch.id).status is BatchStatus.SUCCEEDED
    drain(app)
    assert calls.names() == ["finish"]


def test_async_code_fills_a_batch_too(app: stalwart.App, calls: Calls) -> None:
    cb = callbacks(app, calls)

    @app.task
    async def fetch(n: int) -> int:
        return n

    async def fill() -> int:
        async with app.batch(on_finish=cb["finish"].prepare()) as batch:
            await asyncio.gather(*(fetch.aenqueue(i) for i in range(3)))
        return batch.id

    batch_id = asyncio.run(fill())
    assert app.get_batch(batch_id).total == 3
    drain(app)
    assert calls.names() == ["finish"]


def test_a_batch_in_a_rolled_back_transaction_leaves_nothing(app: stalwart.App) -> None:
    @app.task
    def noop() -> None: ...

    app.migrate()
    with app.store.engine.connect() as conn:
        tx = conn.begin()
        with app.batch(connection=conn):
            noop.enqueue()
        tx.rollback()
    assert app.batches() == [] and count(app.store, "jobs") == 0


def test_a_job_fans_out_into_its_own_batch_and_the_callbacks_wait(
    app: stalwart.App, calls: Calls
) -> None:
    cb = callbacks(app, calls)

    @app.task(name="wf.child")
    def child(i: int) -> int:
        return i

    @app.task
    def parent() -> None:
        job = stalwart.current_job()
        job.batch.enqueue_many([child.prepare(i) for i in range(50)])
        assert not calls.seen  # the batch cannot finish while this job runs
        child.enqueue(99)  # a plain enqueue does not join the batch

    with app.batch(on_success=cb["success"].prepare()) as batch:
        parent.enqueue()
    drain(app)
    result = app.get_batch(batch.id)
    assert (result.total, result.succeeded) == (51, 51)
    assert calls.names() == ["success"]


def test_dependencies_run_in_order_and_see_their_results(app: stalwart.App) -> None:
    seen: dict[str, Any] = {}

    @app.task
    def step(name: str) -> str:
        seen[name] = stalwart.current_job().dependency_results
        return name.upper()

    a = step.enqueue("a")
    b = step.using(after=[a]).enqueue("b")
    c = step.using(after=[a.id]).enqueue("c")
    d = step.using(after=[b, c]).enqueue("d")
    assert (b.status, app.get_result(d.id).status) == (JobStatus.WAITING, JobStatus.WAITING)
    drain(app)
    assert seen["a"] == {} and seen["b"] == {a.id: "A"}
    assert seen["d"] == {b.id: "B", c.id: "C"}
    assert app.get_result(d.id).return_value == "D"


def test_a_failed_dependency_fails_the_dependent_or_lets_it_run(app: stalwart.App) -> None:
    @app.task
    def boom() -> None:
        raise ValueError("no")

    @app.task
    def after() -> str:
        return "ran"

    a = boom.enqueue()
    failed = after.using(after=[a]).enqueue()
    runs = after.using(after=[a], on_dependency_failure="run").enqueue()
    drain(app)
    result = app.get_result(failed.id)
    assert result.status is JobStatus.FAILED and result.attempts == 0
    assert result.errors[-1].exception_class == "stalwart.errors.DependencyFailed"
    assert app.get_result(runs.id).return_value == "ran"
    with pytest.raises(stalwart.DependencyNotFound, match="999999"):
        after.using(after=[999999]).enqueue()
    with pytest.raises(TypeError, match="after="):
        after.using(after=["x"])  # type: ignore[list-item]


def test_a_chain_passes_each_return_value_on(app: stalwart.App) -> None:
    @app.task
    def add(n: int, previous: int = 0) -> int:
        return previous + n

    steps = app.chain(add.prepare(1), add.prepare(2), add.prepare(3))
    assert [s.status for s in steps][1:] == [JobStatus.WAITING, JobStatus.WAITING]
    drain(app)
    assert [app.get_result(s.id).return_value for s in steps] == [1, 3, 6]


def test_progress_keeps_the_last_value_reported(app: stalwart.App) -> None:
    @app.task
    def work() -> None:
        job = stalwart.current_job()
        for i in range(1, 101):
            job.set_progress(i, total=100, message=f"row {i}")

    j = work.enqueue()
    drain(app)
    progress = app.get_result(j.id).progress
    assert progress is not None
    assert (progress["done"], progress["total"], progress["message"]) == (100, 100, "row 100")
