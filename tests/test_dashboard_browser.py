"""The dashboard in a real headless Chromium, served by a real uvicorn server.

Chromium comes from Debian (`scripts/ensure-browser.sh` installs it); Playwright
drives it (never `playwright install`: no browser download). Screenshots of the
overview and of a job page come from the SQLite run (into docs/ with
STALWART_SCREENSHOTS=1).
"""

from __future__ import annotations

import os
import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

import stalwart
from stalwart.processes import Worker
from stalwart.testing import drain
from stalwart.web import BasicAuth, dashboard

from .helpers import wait_for

CHROMIUM = "/usr/bin/chromium"
# Screenshots go to docs/ when STALWART_SCREENSHOTS=1 (to refresh the README's), else to
# a temporary folder: a test run leaves the work tree as it was.
DOCS = Path(__file__).resolve().parent.parent / "docs"

pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None, reason="run scripts/ensure-browser.sh to install chromium"
)
sync_api = pytest.importorskip("playwright.sync_api")


class Flaky:
    failing = True


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture
def served(app: stalwart.App) -> Iterator[str]:
    """The dashboard of ``app`` on a real uvicorn server; yields its base URL."""
    web = dashboard(app, auth=BasicAuth(admins={"admin": "pw"}))
    config = uvicorn.Config(web, host="127.0.0.1", port=0, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def page(browser: object, served: str) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        http_credentials={"username": "admin", "password": "pw"},
        viewport={"width": 1280, "height": 860},
    )
    p = context.new_page()
    errors: list[str] = []
    p.on("pageerror", lambda e: errors.append(str(e)))
    p.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    yield p
    context.close()
    assert errors == [], errors  # no script error, no CSP violation


def test_see_a_failed_job_open_it_retry_it_and_see_it_succeed(
    app: stalwart.App, backend: str, served: str, page: object, tmp_path: Path
) -> None:
    p = page
    shots = DOCS if os.environ.get("STALWART_SCREENSHOTS") == "1" else tmp_path
    Flaky.failing = True

    @app.task(name="mail.deliver", queue_name="mail")
    def deliver(account_id: int, subject: str, password: str = "") -> None:
        if Flaky.failing:
            raise ConnectionError(f"SMTP server refused account {account_id}")

    @app.task(name="reports.build", queue_name="reports")
    def build(report: str) -> dict[str, str]:
        return {"report": report}

    app.enqueue_many(build, [((f"r{i}",), {}) for i in range(40)])
    job = deliver.enqueue(7, subject="Welcome <b>aboard</b>", password="hunter2")
    drain(app)
    assert app.get_result(job.id).status == "FAILED"
    build.enqueue("pending")
    p.goto(served + "/")  # type: ignore[attr-defined]
    assert p.title() == "Overview · Stalwart"  # type: ignore[attr-defined]
    if backend == "sqlite":
        p.screenshot(path=str(shots / "dashboard-overview.png"), full_page=True)  # type: ignore[attr-defined]
    # Overview -> failed jobs -> the job.
    p.click("a.card-failed")  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r"/jobs\?status=failed"))  # type: ignore[attr-defined]
    row = p.locator("table.jobs tbody tr", has_text="SMTP server refused account 7")  # type: ignore[attr-defined]
    assert row.count() == 1
    row.locator(f"a[href$='/jobs/{job.id}']").click()
    p.wait_for_url(re.compile(rf"/jobs/{job.id}$"))  # type: ignore[attr-defined]
    body = p.locator("main").inner_text()  # type: ignore[attr-defined]
    assert "ConnectionError" in body and "Traceback" in body
    assert "hunter2" not in body and "[redacted]" in body
    assert "Welcome <b>aboard</b>" in body  # shown as text, not markup
    if backend == "sqlite":
        p.screenshot(path=str(shots / "dashboard-job.png"), full_page=True)  # type: ignore[attr-defined]
    # Retry it from the page, then let a worker run it.
    p.click("button:has-text('Retry')")  # type: ignore[attr-defined]
    p.wait_for_selector("p.notice")  # type: ignore[attr-defined]
    assert "Retried 1 job(s)." in p.locator("p.notice").inner_text()  # type: ignore[attr-defined]
    Flaky.failing = False
    drain(app)
    p.reload()  # type: ignore[attr-defined]
    assert p.locator("h1 .status").inner_text() == "successful"  # type: ignore[attr-defined]
    p.goto(served + "/audit")  # type: ignore[attr-defined]
    audit = p.locator("table.audit").inner_text()  # type: ignore[attr-defined]
    assert "admin" in audit and "retry" in audit and "127.0.0.1" in audit


def test_pause_a_queue_workers_stop_and_the_why_panel_says_so(
    app: stalwart.App, served: str, page: object
) -> None:
    p = page
    done: list[int] = []

    @app.task(name="mail.send", queue_name="mail")
    def send(n: int) -> None:
        done.append(n)

    worker = Worker(app, queues=["mail"], threads=2, polling_interval=0.05)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        first = send.enqueue(1)
        wait_for(lambda: app.get_result(first.id).status == "SUCCESSFUL")
        p.goto(served + "/")  # type: ignore[attr-defined]
        row = p.locator("table.queues tr", has_text="mail")  # type: ignore[attr-defined]
        row.locator("button:has-text('Pause')").click()
        p.wait_for_selector("p.notice")  # type: ignore[attr-defined]
        assert "paused" in p.locator("table.queues tr", has_text="mail").inner_text()  # type: ignore[attr-defined]
        assert app.paused_queues() == {"mail"}
        second = send.enqueue(2)
        time.sleep(0.6)  # many polls of the live worker
        assert app.get_result(second.id).status == "READY" and done == [1]
        p.goto(f"{served}/jobs/{second.id}")  # type: ignore[attr-defined]
        why = p.locator("#why").inner_text()  # type: ignore[attr-defined]
        assert "Queue 'mail' is paused" in why
        assert "No worker" not in why  # the worker is live and listens to mail
        p.click("#why button:has-text('Resume mail')")  # type: ignore[attr-defined]
        p.wait_for_selector("p.notice")  # type: ignore[attr-defined]
        wait_for(lambda: app.get_result(second.id).status == "SUCCESSFUL")
        assert done == [1, 2]
    finally:
        worker.stop()
        runner.join(15)


def test_a_batch_page_shows_its_progress_and_a_waiting_job_names_its_dependency(
    app: stalwart.App, served: str, page: object
) -> None:
    p = page

    @app.task(name="wf.fast", queue_name="fast")
    def fast(n: int) -> None:
        stalwart.current_job().set_progress(3, total=4, message="rows")

    @app.task(name="wf.slow", queue_name="slow")
    def slow(n: int) -> None: ...

    @app.task(name="wf.report")
    def report(batch_id: int) -> None: ...

    with app.batch(on_success=report.prepare(), description="Nightly import") as batch:
        first = fast.enqueue(1)
        fast.enqueue(2)
        held = slow.enqueue(3)
        slow.enqueue(4)
    waiting = fast.using(after=[held]).enqueue(5)
    worker = Worker(app, queues=["fast"], threads=2, polling_interval=0.05)
    runner = threading.Thread(target=worker.run, daemon=True)
    runner.start()
    try:
        wait_for(lambda: app.get_batch(batch.id).succeeded == 2, what="the fast jobs")
    finally:
        worker.stop()
        runner.join(15)
    p.goto(served + "/batches")  # type: ignore[attr-defined]
    row = p.locator("table.batches tbody tr", has_text="Nightly import")  # type: ignore[attr-defined]
    assert "running" in row.inner_text()
    row.locator(f"a[href$='/batches/{batch.id}']").click()
    p.wait_for_url(re.compile(rf"/batches/{batch.id}$"))  # type: ignore[attr-defined]
    bar = p.locator("#batch-progress progress")  # type: ignore[attr-defined]
    assert float(bar.get_attribute("value")) == 50.0
    assert "2 succeeded, 0 failed, 2 pending, of 4" in p.locator("#batch-progress").inner_text()  # type: ignore[attr-defined]
    assert "on_success: wf.report" in p.locator("#callbacks").inner_text()  # type: ignore[attr-defined]
    assert p.locator("#batch-jobs tbody tr").count() == 4  # type: ignore[attr-defined]
    # A job of the batch: its progress bar, and a link back to its batch.
    p.click(f"#batch-jobs a[href$='/jobs/{first.id}']")  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(rf"/jobs/{first.id}$"))  # type: ignore[attr-defined]
    assert float(p.locator("#job-progress progress").get_attribute("value")) == 75.0  # type: ignore[attr-defined]
    assert f"batch #{batch.id}" in p.locator("dl.facts").inner_text()  # type: ignore[attr-defined]
    # The waiting job's why-panel names the job it waits for, and links to it.
    p.goto(f"{served}/jobs/{waiting.id}")  # type: ignore[attr-defined]
    why = p.locator("#why").inner_text()  # type: ignore[attr-defined]
    assert "It waits for the job(s) it depends on to succeed" in why
    assert f"#{held.id} (wf.slow, ready)" in why
    p.click(f"#why a[href$='/jobs/{held.id}']")  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(rf"/jobs/{held.id}$"))  # type: ignore[attr-defined]
    assert f"#{waiting.id}" in p.locator("dl.facts").inner_text()  # type: ignore[attr-defined]
