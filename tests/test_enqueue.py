"""The task API: enqueue, options, results, JSON-only arguments, transactions."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from datetime import UTC, timedelta

import pytest
from sqlalchemy import text

import stalwart
from stalwart import JobStatus, SerializationError

from .helpers import count


def test_enqueue_returns_a_ready_job_with_its_arguments(app: stalwart.App) -> None:
    @app.task(queue_name="mail", priority=5)
    def deliver(account_id: int, subject: str) -> None: ...

    job = deliver.enqueue(7, subject="hi")
    assert job.status is JobStatus.READY
    stored = app.get_result(job.id)
    assert stored.status is JobStatus.READY
    assert (
        stored.task_name
        == f"{__name__}.test_enqueue_returns_a_ready_job_with_its_arguments.<locals>.deliver"
    )
    assert (stored.args, stored.kwargs) == ([7], {"subject": "hi"})
    assert (stored.queue_name, stored.priority) == ("mail", 5)
    assert stored.enqueued_at is not None and stored.enqueued_at.tzinfo is UTC
    assert stored.started_at is None and stored.finished_at is None
    assert stored.attempts == 0 and stored.errors == [] and stored.return_value is None


def test_task_name_can_be_set(app: stalwart.App) -> None:
    @app.task(name="billing.charge")
    def charge() -> None: ...

    assert app.get_result(charge.enqueue().id).task_name == "billing.charge"
    with pytest.raises(ValueError, match="already registered"):
        app.task(name="billing.charge")(lambda: None)


def test_using_overrides_options_without_changing_the_task(app: stalwart.App) -> None:
    @app.task
    def work() -> None: ...

    later = work.using(run_after=timedelta(minutes=5), priority=10, queue_name="bulk").enqueue()
    stored = app.get_result(later.id)
    assert stored.status is JobStatus.SCHEDULED
    assert (stored.priority, stored.queue_name) == (10, "bulk")
    assert stored.scheduled_at is not None
    delay = stored.scheduled_at - dt.datetime.now(UTC)
    assert timedelta(minutes=4) < delay <= timedelta(minutes=5)
    now = app.get_result(work.enqueue().id)
    assert (now.status, now.priority, now.queue_name) == (JobStatus.READY, 0, "default")


def test_run_after_accepts_an_aware_datetime(app: stalwart.App) -> None:
    @app.task
    def work() -> None: ...

    at = dt.datetime(2100, 1, 1, 12, 0, tzinfo=dt.timezone(timedelta(hours=2)))
    stored = app.get_result(work.using(run_after=at).enqueue().id)
    assert stored.scheduled_at == at.astimezone(UTC)


@pytest.mark.parametrize("priority", [-101, 101, 1.5, "high", True])
def test_priority_out_of_range_is_refused(app: stalwart.App, priority: object) -> None:
    @app.task
    def work() -> None: ...

    with pytest.raises(ValueError, match="priority"):
        work.using(priority=priority)  # type: ignore[arg-type]


@pytest.mark.parametrize("queue", ["", "a b", "x'; DROP TABLE stalwart_jobs; --", "q" * 101])
def test_bad_queue_names_are_refused(app: stalwart.App, queue: str) -> None:
    with pytest.raises(ValueError, match="not a valid queue name"):
        app.task(queue_name=queue)(lambda: None)


def test_non_json_argument_is_refused_naming_it_and_nothing_is_stored(app: stalwart.App) -> None:
    @app.task
    def work(*args: object, **kwargs: object) -> None: ...

    with pytest.raises(SerializationError, match=r"argument 'user'.*datetime\.datetime"):
        work.enqueue(user=dt.datetime.now())
    with pytest.raises(SerializationError, match=r"args\[1\]\[0\]\['x'\].*set"):
        work.enqueue(1, [{"x": {1}}])
    with pytest.raises(SerializationError, match="NaN"):
        work.enqueue(float("nan"))
    with pytest.raises(SerializationError, match="keys must be str"):
        work.enqueue({1: "a"})
    with pytest.raises(SerializationError, match=r"calls\[1\]: argument args\[0\] .*object"):
        app.enqueue_many(work, [((1,), {}), ((object(),), {})])
    assert app.store.jobs_pending_count() == 0


def test_enqueue_many_inserts_all_in_order(app: stalwart.App) -> None:
    @app.task(queue_name="bulk")
    def work(n: int, tag: str = "") -> None: ...

    results = app.enqueue_many(work, [((i,), {"tag": f"t{i}"}) for i in range(2500)])
    assert len(results) == 2500
    assert len({r.id for r in results}) == 2500
    assert [r.id for r in results] == sorted(r.id for r in results)
    for r in (results[0], results[1234], results[-1]):
        stored = app.get_result(r.id)
        assert stored.args == r.args and stored.kwargs == r.kwargs
        assert stored.status is JobStatus.READY
    assert count(app.store, "ready_executions", queue_name="bulk") == 2500


def test_enqueue_many_keeps_awkward_text_intact(app: stalwart.App) -> None:
    """Tabs, line breaks, backslashes and non-ASCII in arguments and context survive
    the bulk path (COPY text on PostgreSQL, which escapes them by hand)."""

    class Req(stalwart.CurrentAttributes):
        note: str | None = None

    @app.task(queue_name="bulk")
    def work(text: str, extra: dict[str, str]) -> None: ...

    awkward = ["a\tb", "line1\nline2\r\n", "back\\slash \\N", "\\", "日本語 ✓", "\u0000x"]
    calls = [
        ((awkward[i % len(awkward)],), {"extra": {"k\t": awkward[-i % 6]}}) for i in range(300)
    ]
    Req.note = "ctx\twith\\escapes\n"
    try:
        results = app.enqueue_many(work, calls)
    finally:
        Req.note = None
    later = app.enqueue_many(work.using(run_after=timedelta(hours=1)), calls[:150])
    for r, (args, kwargs) in zip(list(results) + list(later), calls + calls[:150], strict=True):
        stored = app.get_result(r.id)
        assert stored.args == list(args) and stored.kwargs == kwargs
    row = app.store.jobs_get([results[7].id])[0]
    assert list(json.loads(row.context or "{}").values()) == [{"note": "ctx\twith\\escapes\n"}]
    assert count(app.store, "ready_executions", queue_name="bulk") == 300


def test_enqueue_in_the_callers_transaction_commits_and_rolls_back_with_it(
    app: stalwart.App,
) -> None:
    @app.task
    def work(n: int) -> None: ...

    engine = app.store.engine
    with engine.connect() as conn:
        with conn.begin():
            kept = app.enqueue(work, (1,), connection=conn)
        trans = conn.begin()
        dropped = app.enqueue(work, (2,), connection=conn)
        trans.rollback()
    assert app.get_result(kept.id).status is JobStatus.READY
    with pytest.raises(stalwart.JobNotFound):
        app.get_result(dropped.id)


def test_enqueue_by_name_and_unknown_names(app: stalwart.App) -> None:
    @app.task(name="named")
    def work(x: int) -> None: ...

    assert app.get_result(app.enqueue("named", (3,)).id).args == [3]
    with pytest.raises(stalwart.UnknownTaskError, match=r"'nope'.*registered: named"):
        app.enqueue("nope")


def test_aenqueue(app: stalwart.App) -> None:
    @app.task
    def work(x: int) -> None: ...

    job = asyncio.run(work.aenqueue(5))
    assert app.get_result(job.id).args == [5]


def test_call_runs_inline_and_async_tasks_too(app: stalwart.App) -> None:
    @app.task
    def add(a: int, b: int) -> int:
        return a + b

    @app.task
    async def aadd(a: int, b: int) -> int:
        await asyncio.sleep(0)
        return a + b

    assert add.call(2, 3) == 5
    assert aadd.call(2, 3) == 5
    assert asyncio.run(aadd.acall(4, 5)) == 9
    assert app.store.jobs_pending_count() == 0


def test_get_result_of_unknown_id(app: stalwart.App) -> None:
    with pytest.raises(stalwart.JobNotFound, match="123456789"):
        app.get_result(123456789)


def test_rows_are_where_the_status_says(app: stalwart.App) -> None:
    @app.task
    def work() -> None: ...

    ready = work.enqueue()
    later = work.using(run_after=timedelta(hours=1)).enqueue()
    with app.store.engine.connect() as conn:
        r = conn.execute(text("SELECT job_id FROM stalwart_ready_executions")).scalars().all()
        s = conn.execute(text("SELECT job_id FROM stalwart_scheduled_executions")).scalars().all()
    assert list(r) == [ready.id]
    assert list(s) == [later.id]
