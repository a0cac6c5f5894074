"""What an operator sees of attempts: error hooks, one log line per attempt (JSON too),
outages told once, in-process metrics, and a clear error for an un-migrated database."""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

import stalwart
from stalwart.config import Config
from stalwart.errors import SchemaNotMigrated
from stalwart.observe import enable_metrics
from stalwart.observe.logs import JsonFormatter
from stalwart.observe.outage import OutageLog
from stalwart.testing import drain


class Current(stalwart.CurrentAttributes):
    tenant_id: int | None = None


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    """What the `stalwart.jobs` logger writes, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(stalwart.JobLogFilter())  # must not overwrite the line's own fields
    logger = logging.getLogger("stalwart.jobs")
    logger.addHandler(handler)
    old = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(old)


def test_error_hooks_see_every_failed_attempt_in_the_jobs_context(
    app: stalwart.App, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[tuple[Any, ...]] = []

    @app.on_job_error
    def report(job: stalwart.JobInfo, exc: BaseException) -> None:
        current = stalwart.current_job()
        seen.append((job.task_name, job.attempt, type(exc).__name__, Current.tenant_id, current.id))

    @app.on_job_error
    def broken_reporter(job: stalwart.JobInfo, exc: BaseException) -> None:
        raise RuntimeError("the reporter is down")

    @app.task(name="hooks.fails", retry=stalwart.Retry(attempts=2, base=0, jitter=False))
    def fails() -> None:
        raise ValueError("no")

    @app.task(name="hooks.slow", timeout=0.2)
    def slow() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pass

    @app.task(name="hooks.async_fails")
    async def async_fails() -> None:
        raise KeyError("async")

    @app.task(name="hooks.ok")
    def ok() -> None:
        pass

    Current.tenant_id = 7
    try:
        ids = [t.enqueue().id for t in (fails, slow, async_fails, ok)]
    finally:
        Current.reset()  # this test's context is the next test's too
    with caplog.at_level(logging.ERROR, "stalwart.jobs"):
        drain(app)
    assert sorted(seen) == sorted(
        [
            ("hooks.fails", 1, "ValueError", 7, ids[0]),
            ("hooks.fails", 2, "ValueError", 7, ids[0]),
            ("hooks.slow", 1, "JobTimeout", 7, ids[1]),
            ("hooks.async_fails", 1, "KeyError", 7, ids[2]),
        ]
    )
    # A failing hook is logged and changes nothing.
    assert sum("on_job_error hook" in r.getMessage() for r in caplog.records) == 4
    result = app.get_result(ids[0])
    assert (result.status, result.attempts) == (stalwart.JobStatus.FAILED, 2)
    assert app.get_result(ids[3]).status is stalwart.JobStatus.SUCCESSFUL


def test_one_json_line_per_attempt_with_its_fields(
    app: stalwart.App, json_lines: io.StringIO
) -> None:
    @app.task(name="logs.flaky", retry=stalwart.Retry(attempts=2, base=0, jitter=False))
    def flaky() -> None:
        if stalwart.current_job().attempt == 1:
            raise RuntimeError("first try fails")

    @app.task(name="logs.ok", queue_name="mail")
    def ok(n: int) -> int:
        return n

    first, second = flaky.enqueue().id, ok.enqueue(3).id
    drain(app)
    lines = [json.loads(line) for line in json_lines.getvalue().splitlines()]
    assert all(isinstance(line, dict) for line in lines)
    fields = {"job_id", "task_name", "queue_name", "attempt", "duration", "outcome"}
    assert all(fields <= set(line) for line in lines), lines
    by_job = {(line["job_id"], line["attempt"]): line for line in lines}
    assert set(by_job) == {(first, 1), (first, 2), (second, 1)}
    retried = by_job[(first, 1)]
    assert (retried["outcome"], retried["level"]) == ("retried", "WARNING")
    assert "RuntimeError: first try fails" in retried["exception"]
    assert by_job[(first, 2)]["outcome"] == "succeeded"
    done = by_job[(second, 1)]
    assert (done["outcome"], done["level"], done["queue_name"]) == ("succeeded", "INFO", "mail")
    assert done["task_name"] == "logs.ok" and done["duration"] >= 0
    assert done["time"].endswith("+00:00")


def test_an_outage_is_told_once_summed_up_and_once_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outages = OutageLog("worker-1", logging.getLogger("test.outage"), summary_every=0.05)
    with caplog.at_level(logging.WARNING, "test.outage"):
        assert outages.succeeded() is False  # nothing to end
        for _ in range(50):
            outages.failed(ConnectionError("connection refused"), 0.1)
        time.sleep(0.06)
        outages.failed(ConnectionError("connection refused"), 0.1)
        assert outages.succeeded() is True
        assert outages.succeeded() is False
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines
    assert "database unavailable: connection refused" in lines[0]
    assert "still unavailable" in lines[1] and "51 failed tries" in lines[1]
    assert "database is back" in lines[2] and "(51 failed tries)" in lines[2]


def test_metrics_count_enqueues_and_written_attempts(app: stalwart.App) -> None:
    enable_metrics()

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    @app.task(name="metrics.fails", queue_name="m", retry=stalwart.Retry(attempts=2, base=0))
    def fails() -> None:
        raise ValueError("no")

    @app.task(name="metrics.ok", queue_name="m")
    def ok() -> None:
        pass

    before = {
        "enq": value("stalwart_jobs_enqueued_total", queue="m", task="metrics.ok"),
        "ok": value(
            "stalwart_jobs_finished_total", queue="m", task="metrics.ok", outcome="succeeded"
        ),
        "retried": value(
            "stalwart_jobs_finished_total", queue="m", task="metrics.fails", outcome="retried"
        ),
        "failed": value(
            "stalwart_jobs_finished_total", queue="m", task="metrics.fails", outcome="failed"
        ),
        "runs": value("stalwart_job_duration_seconds_count", queue="m", task="metrics.fails"),
        "pickups": value("stalwart_job_pickup_delay_seconds_count", queue="m"),
    }
    app.enqueue_many(ok, [((), {}) for _ in range(3)])
    fails.enqueue()
    drain(app)
    assert value("stalwart_jobs_enqueued_total", queue="m", task="metrics.ok") - before["enq"] == 3
    ok_now = value(
        "stalwart_jobs_finished_total", queue="m", task="metrics.ok", outcome="succeeded"
    )
    assert ok_now - before["ok"] == 3
    for outcome in ("retried", "failed"):
        now = value(
            "stalwart_jobs_finished_total", queue="m", task="metrics.fails", outcome=outcome
        )
        assert now - before[outcome] == 1, outcome
    runs = value("stalwart_job_duration_seconds_count", queue="m", task="metrics.fails")
    assert runs - before["runs"] == 2
    assert value("stalwart_job_pickup_delay_seconds_count", queue="m") - before["pickups"] == 5


def test_an_unmigrated_database_says_to_run_migrate(tmp_path: Path, backend: str) -> None:
    from tests.conftest import SERVER_URLS

    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'empty.db'}"
    elif backend == "postgresql":
        # A schema that holds no table: the same as a database never migrated.
        url = SERVER_URLS["postgresql"] + "?options=-csearch_path%3Dstalwart_nothing_here"
    else:
        # A database that exists and holds no Stalwart table.
        url = SERVER_URLS["mariadb"].rsplit("/", 1)[0] + "/mysql"
    app = stalwart.App(config=Config(database_url=url, source="tests"))

    @app.task(name="unmigrated.ok")
    def ok() -> None:
        pass

    try:
        with pytest.raises(SchemaNotMigrated, match="run `stalwart migrate`"):
            ok.enqueue()
        with pytest.raises(SchemaNotMigrated):
            app.get_result(1)
    finally:
        app.close()


def test_missing_schema_codes_of_every_database() -> None:
    from stalwart.store.capabilities import is_missing_schema

    class PgError(Exception):
        sqlstate = "42P01"

    assert is_missing_schema(PgError('relation "stalwart_jobs" does not exist'))
    assert is_missing_schema(Exception(1146, "Table 'x.stalwart_jobs' doesn't exist"))
    assert is_missing_schema(Exception("no such table: stalwart_jobs"))
    assert not is_missing_schema(Exception(1213, "Deadlock found"))


def test_the_grafana_dashboard_uses_only_metrics_that_exist() -> None:
    import re

    root = Path(__file__).resolve().parent.parent
    dashboard = json.loads((root / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"stalwart_[a-z_]+", e)}
    source = (root / "src" / "stalwart" / "observe" / "gauges.py").read_text()
    gauges = set(re.findall(r'"(stalwart_[a-z_]+)"', source))
    counted = {"stalwart_jobs_enqueued_total", "stalwart_jobs_finished_total"}
    histograms = {
        f"{name}_{suffix}"
        for name in ("stalwart_job_duration_seconds", "stalwart_job_pickup_delay_seconds")
        for suffix in ("bucket", "count", "sum")
    }
    assert used and used <= gauges | counted | histograms, used - (gauges | counted | histograms)


def test_a_scheduler_tick_after_a_failed_refresh_asks_the_database_again() -> None:
    """A tick that did not talk to the database must not count as the database being
    back: after a failed refresh, the next tick refreshes (and fails) again."""
    import socket
    from datetime import UTC, datetime

    from stalwart.processes.scheduler import Scheduler

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here
    url = f"postgresql://postgres@127.0.0.1:{port}/x"
    app = stalwart.App(config=Config(database_url=url, source="tests"))
    scheduler = Scheduler(app)
    for _ in range(3):
        with pytest.raises(stalwart.DatabaseUnavailable):
            scheduler.tick(datetime.now(UTC))
    app.close()


def test_enqueue_raises_database_unavailable_during_an_outage() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here: the server is down
    for url in (f"postgresql://postgres@127.0.0.1:{port}/x", f"mysql://root@127.0.0.1:{port}/x"):
        app = stalwart.App(config=Config(database_url=url, source="tests"))

        @app.task(name="outage.job")
        def job() -> None: ...

        with pytest.raises(stalwart.errors.DatabaseUnavailable):
            job.enqueue()
        app.close()
