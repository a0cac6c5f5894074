"""Workflows where a person looks: `stalwart batches`, `stalwart jobs show`, the
dashboard's why-panel for WAITING jobs, and the Django status mapping."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner

import stalwart
from stalwart.cli import main
from stalwart.testing import drain

pytest.importorskip("starlette")

from starlette.testclient import TestClient

from stalwart.web import BasicAuth, dashboard


def cli(app: stalwart.App, *args: str, code: int = 0) -> Any:
    result = CliRunner().invoke(main, ["--database", app.config.database_url, *args])
    assert result.exit_code == code, result.output
    return json.loads(result.stdout) if "--json" in args and code == 0 else result.output


def test_batches_list_and_show_and_jobs_show(app: stalwart.App) -> None:
    @app.task(name="wf.work")
    def work(n: int) -> int:
        stalwart.current_job().set_progress(n, total=10, message="half")
        return n

    @app.task(name="wf.done")
    def done(batch_id: int) -> None: ...

    with app.batch(on_finish=done.prepare(), description="nightly") as batch:
        first = work.enqueue(5)
    waiting = work.using(after=[first]).enqueue(6)
    listed = cli(app, "batches", "list", "--json")
    assert [(b["id"], b["status"], b["total"]) for b in listed] == [(batch.id, "RUNNING", 1)]
    assert "nightly" in cli(app, "batches", "list")
    shown = cli(app, "jobs", "show", str(waiting.id), "--json")
    assert shown["status"] == "WAITING"
    assert shown["depends_on"] == [{"id": first.id, "task": "wf.work", "status": "READY"}]
    drain(app)
    data = cli(app, "batches", "show", str(batch.id), "--json")
    assert (data["status"], data["succeeded"], data["pending"]) == ("SUCCEEDED", 1, 0)
    [callback] = data["callbacks"]
    assert callback["on"] == "finish" and callback["job_id"] is not None
    assert "on_finish" in cli(app, "batches", "show", str(batch.id))
    shown = cli(app, "jobs", "show", str(first.id), "--json")
    assert shown["batch_id"] == batch.id
    assert shown["progress"]["done"] == 5 and shown["progress"]["total"] == 10
    assert shown["dependents"] == [{"id": waiting.id, "task": "wf.work", "status": "SUCCESSFUL"}]
    assert "no batch with id 999" in cli(app, "batches", "show", "999", code=1)


def test_the_why_panel_names_the_dependency_a_waiting_job_waits_for(app: stalwart.App) -> None:
    @app.task(name="wf.step")
    def step() -> None: ...

    first = step.enqueue()
    then = step.using(after=[first]).enqueue()
    client = TestClient(dashboard(app, auth=BasicAuth(admins={"admin": "pw"})))
    client.auth = ("admin", "pw")
    html = client.get(f"/jobs/{then.id}").text
    assert "It waits for the job(s) it depends on to succeed" in html
    assert f"#{first.id} (wf.step, ready)" in html


def test_django_reads_waiting_as_ready() -> None:
    pytest.importorskip("django")
    from stalwart.contrib.django.compat import TaskResultStatus
    from stalwart.contrib.django.results import status_of

    assert status_of(stalwart.JobStatus.WAITING) == TaskResultStatus.READY


def test_batch_pages_answer_bad_input_without_a_500(app: stalwart.App) -> None:
    @app.task(name="wf.x")
    def x() -> None: ...

    with app.batch(description="b") as batch:
        job = x.enqueue()
    client = TestClient(dashboard(app, auth=BasicAuth(admins={"admin": "pw"})))
    client.auth = ("admin", "pw")
    assert client.get("/batches").status_code == 200
    assert f"/batches/{batch.id}" in client.get("/batches").text
    assert client.get(f"/batches/{batch.id}").status_code == 200
    assert client.get("/batches/999999").status_code == 404
    assert client.get("/batches/abc").status_code == 404
    assert client.get("/batches?page=x").status_code == 400
    assert client.get("/jobs?status=ready&batch=abc").status_code == 400
    listed = client.get(f"/jobs?status=ready&batch={batch.id}").text
    link = f'/jobs/{job.id}"'
    assert f"batch #{batch.id}" in listed and link in listed
    assert link not in client.get(f"/jobs?status=ready&batch={batch.id + 1}").text
