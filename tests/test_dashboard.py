"""The dashboard through its real ASGI stack, on SQLite, PostgreSQL and MariaDB.

Every page and action, the security rules (closed by default, basic auth, read-only
role, CSRF, escaping, bound parameters), and how it is served (CSP, compression,
fingerprinted assets, body limit).
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import insert
from starlette.applications import Starlette
from starlette.routing import Mount

import stalwart
from stalwart.store import schema as s
from stalwart.store import utcnow
from stalwart.testing import drain
from stalwart.web import BasicAuth, ClientIPConfig, Principal, dashboard

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

SCRIPT = "<script>alert(1)</script>"
SQLISH = "x' OR 1=1 --"
AUTH = BasicAuth(admins={"admin": "pw"}, viewers={"viewer": "pw"})


class Flaky:
    """A task body that fails until told otherwise."""

    failing = True


@pytest.fixture
def tasks(app: stalwart.App) -> dict[str, stalwart.Task]:  # type: ignore[type-arg]
    Flaky.failing = True

    @app.task(name="mail.deliver", queue_name="mail")
    def deliver(account_id: int, password: str = "", **extra: object) -> str:
        if Flaky.failing:
            raise ValueError(f"SMTP said no to {account_id}")
        return "sent"

    @app.task(name="ok.echo")
    def echo(value: object) -> object:
        return value

    @app.task(name="ok.sign")
    def sign(api_token: str, payload: dict[str, object]) -> None:
        raise RuntimeError("boom")

    @app.task(
        name="acct.sync",
        queue_name="acct",
        concurrency=stalwart.Limit(to=1, key=lambda account_id: account_id),
    )
    def sync(account_id: int) -> None: ...

    return {"deliver": deliver, "echo": echo, "sign": sign, "sync": sync}


def client_for(app: stalwart.App, user: str | None = "admin", **options: object) -> TestClient:
    options.setdefault("auth", AUTH)
    web = dashboard(app, **options)  # type: ignore[arg-type]
    client = TestClient(web)
    if user is not None:
        client.auth = (user, "pw")
    return client


@pytest.fixture
def client(app: stalwart.App) -> Iterator[TestClient]:
    with client_for(app) as c:
        yield c


def token(client: TestClient, path: str = "/") -> str:
    """The CSRF token a page hands out (in its forms and its cookie)."""
    html = client.get(path).text
    value = client.cookies.get("stalwart_csrf")
    assert value, "no CSRF cookie"
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found is None or found.group(1) == value
    return value


def failed_job(app: stalwart.App, tasks: dict[str, stalwart.Task], **kwargs: object) -> int:  # type: ignore[type-arg]
    job = tasks["deliver"].enqueue(7, **kwargs)
    drain(app)
    assert app.get_result(job.id).status == "FAILED"
    return job.id


# ---- closed by default, authentication, roles ----


def test_unconfigured_dashboard_is_closed_with_a_how_to(app: stalwart.App) -> None:
    c = TestClient(dashboard(app))
    for method, path in [
        ("GET", "/"),
        ("GET", "/jobs"),
        ("GET", "/jobs/1"),
        ("POST", "/jobs/1/retry"),
    ]:
        r = c.request(method, path)
        assert r.status_code == 401
        assert "STALWART_DASHBOARD_ADMINS" in r.text and "BasicAuth" in r.text
        assert "www-authenticate" not in r.headers  # no browser prompt that cannot succeed


def test_basic_auth_refuses_missing_and_wrong_credentials(app: stalwart.App) -> None:
    c = client_for(app, user=None)
    r = c.get("/")
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith('Basic realm="Stalwart"')
    assert c.get("/", auth=("admin", "wrong")).status_code == 401
    assert c.get("/", auth=("nobody", "pw")).status_code == 401
    assert c.get("/", headers={"authorization": "Basic !!notbase64"}).status_code == 401
    assert c.get("/", auth=("admin", "pw")).status_code == 200


def test_pluggable_authorize_sync_and_async(app: stalwart.App) -> None:
    async def authorize(request: object) -> Principal | None:
        return Principal("sso:carol") if getattr(request, "headers", {}).get("x-user") else None

    c = TestClient(dashboard(app, auth=authorize))
    assert c.get("/").status_code == 401
    r = c.get("/", headers={"x-user": "carol"})
    assert r.status_code == 200 and "sso:carol" in r.text


def test_read_only_role_sees_pages_but_cannot_act(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    job_id = failed_job(app, tasks)
    c = client_for(app, user="viewer")
    page = c.get(f"/jobs/{job_id}")
    assert page.status_code == 200 and "read-only" in page.text
    assert "/retry" not in page.text  # no action buttons
    t = token(c, f"/jobs/{job_id}")
    r = c.post(f"/jobs/{job_id}/retry", data={"csrf_token": t})
    assert r.status_code == 403 and "read-only" in r.text
    assert c.post("/queues/mail/pause", data={"csrf_token": t}).status_code == 403
    assert app.get_result(job_id).status == "FAILED"
    assert app.paused_queues() == set()
    # The whole dashboard read-only: admins cannot act either.
    ro = client_for(app, read_only=True)
    assert ro.post(f"/jobs/{job_id}/retry", data={"csrf_token": token(ro)}).status_code == 403


# ---- CSRF ----


def test_csrf_token_required(
    app: stalwart.App, tasks: dict[str, stalwart.Task], client: TestClient
) -> None:  # type: ignore[type-arg]
    job_id = failed_job(app, tasks)
    r = client.post(f"/jobs/{job_id}/retry", data={})
    assert r.status_code == 403 and "CSRF" in r.text
    r = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": "forged" * 7 + "x"})
    assert r.status_code == 403
    fresh = TestClient(client.app)  # no cookie at all
    fresh.auth = ("admin", "pw")
    assert (
        fresh.post(f"/jobs/{job_id}/retry", data={"csrf_token": token(client)}).status_code == 403
    )
    assert app.get_result(job_id).status == "FAILED"


def test_csrf_cross_site_requests_refused_even_with_the_token(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    job_id = failed_job(app, tasks)
    t = token(client)
    for headers in (
        {"sec-fetch-site": "cross-site"},
        {"sec-fetch-site": "same-site"},
        {"origin": "https://evil.example"},
        {"origin": "null"},
    ):
        r = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": t}, headers=headers)
        assert r.status_code == 403, headers
    assert app.get_result(job_id).status == "FAILED"
    ok = client.post(
        f"/jobs/{job_id}/retry",
        data={"csrf_token": t},
        headers={"sec-fetch-site": "same-origin", "origin": "http://testserver"},
        follow_redirects=False,
    )
    assert ok.status_code == 303


# ---- actions ----


def test_retry_one_job_then_it_succeeds_and_is_audited(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    job_id = failed_job(app, tasks)
    page = client.get("/jobs?status=failed")
    assert f"#{job_id}" in page.text and "SMTP said no to 7" in page.text
    r = client.post(f"/jobs/{job_id}/retry", data={"csrf_token": token(client)})
    assert r.status_code == 200 and "Retried 1 job(s)." in r.text
    Flaky.failing = False
    drain(app)
    assert app.get_result(job_id).status == "SUCCESSFUL"
    assert "successful" in client.get(f"/jobs/{job_id}").text
    audit = client.get("/audit").text
    assert "retry" in audit and "admin" in audit and f"#{job_id}" in audit
    [event] = app.store.audit_page()
    assert (event.actor, event.action, event.job_ids, event.affected) == (
        "admin",
        "retry",
        [job_id],
        1,
    )
    assert event.client_ip == "testclient"


def test_discard_one_job(
    app: stalwart.App, tasks: dict[str, stalwart.Task], client: TestClient
) -> None:  # type: ignore[type-arg]
    job_id = failed_job(app, tasks)
    r = client.post(f"/jobs/{job_id}/discard", data={"csrf_token": token(client)})
    assert "Discarded 1 job(s)." in r.text
    assert client.get(f"/jobs/{job_id}").status_code == 404


def test_bulk_retry_selected_and_discard_matching(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    ids = [tasks["deliver"].enqueue(i).id for i in range(4)]
    other = tasks["sign"].enqueue("t", {"a": 1}).id
    drain(app)
    t = token(client, "/jobs?status=failed")
    r = client.post(
        "/jobs/bulk",
        data={"csrf_token": t, "scope": "selected", "action": "retry", "job_id": ids[:2]},
    )
    assert "Retried 2 job(s)." in r.text
    assert [app.get_result(i).status for i in ids[:2]] == ["READY", "READY"]
    # Every failed job whose error class is ValueError: the two left of deliver.
    r = client.post(
        "/jobs/bulk",
        data={
            "csrf_token": t,
            "scope": "matching",
            "action": "discard",
            "error_class": "ValueError",
        },
    )
    assert "Discarded 2 job(s)." in r.text
    assert app.get_result(other).status == "FAILED"
    events = app.store.audit_page()
    assert [e.action for e in events] == ["bulk_discard", "bulk_retry"]
    assert "error_class='ValueError'" in (events[0].target or "")
    assert client.post("/jobs/bulk", data={"csrf_token": t, "action": "nuke"}).status_code == 400
    assert (
        client.post(
            "/jobs/bulk", data={"csrf_token": t, "action": "retry", "job_id": "1 OR 1=1"}
        ).status_code
        == 400
    )


def test_cancel_a_waiting_job(
    app: stalwart.App, tasks: dict[str, stalwart.Task], client: TestClient
) -> None:  # type: ignore[type-arg]
    job = tasks["echo"].using(run_after=timedelta(hours=1)).enqueue(1)
    page = client.get(f"/jobs/{job.id}")
    assert "/cancel" in page.text
    r = client.post(f"/jobs/{job.id}/cancel", data={"csrf_token": token(client)})
    assert "Cancelled the job" in r.text
    assert app.get_result(job.id).status == "FAILED"


def test_pause_and_resume_a_queue(
    app: stalwart.App, tasks: dict[str, stalwart.Task], client: TestClient
) -> None:  # type: ignore[type-arg]
    job = tasks["deliver"].enqueue(1)
    r = client.post("/queues/mail/pause", data={"csrf_token": token(client)})
    assert "Paused the queue." in r.text and "paused" in r.text
    assert app.paused_queues() == {"mail"}
    why = client.get(f"/jobs/{job.id}").text
    assert "Queue &#39;mail&#39; is paused" in why
    r = client.post("/queues/mail/resume", data={"csrf_token": token(client)})
    assert app.paused_queues() == set()
    assert (
        client.post("/queues/bad%20name/pause", data={"csrf_token": token(client)}).status_code
        == 400
    )
    assert (
        client.post("/queues/mail/explode", data={"csrf_token": token(client)}).status_code == 404
    )
    assert [e.action for e in app.store.audit_page()] == ["resume", "pause"]


# ---- pages ----


def test_every_page_renders_with_jobs_in_every_state(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    failed = failed_job(app, tasks)
    Flaky.failing = False
    done = tasks["echo"].enqueue({"n": 1}).id
    drain(app)
    ready = tasks["echo"].enqueue(2).id
    scheduled = tasks["echo"].using(run_after=timedelta(minutes=30)).enqueue(3).id
    holder = tasks["sync"].enqueue(9).id
    blocked = tasks["sync"].enqueue(9).id
    assert app.get_result(blocked).status == "BLOCKED"
    overview = client.get("/")
    assert overview.status_code == 200
    for q in ("mail", "default", "acct"):
        assert f">{q}</a>" in overview.text
    assert "<svg" in overview.text and "jobs finished" in overview.text
    for status in ("ready", "scheduled", "running", "blocked", "failed", "finished"):
        r = client.get(f"/jobs?status={status}")
        assert r.status_code == 200, status
    assert f"#{ready}" in client.get("/jobs?status=ready").text
    assert f"#{scheduled}" in client.get("/jobs?status=scheduled").text
    assert f"#{blocked}" in client.get("/jobs?status=blocked").text
    assert f"#{done}" in client.get("/jobs?status=finished").text
    for job_id in (failed, done, ready, scheduled, holder, blocked):
        assert client.get(f"/jobs/{job_id}").status_code == 200
    detail = client.get(f"/jobs/{failed}").text
    assert "Traceback" in detail and "SMTP said no to 7" in detail and "Timeline" in detail
    assert "Enqueued" in detail and "Failed" in detail
    assert client.get("/jobs/999999").status_code == 404
    for path in ("/processes", "/recurring", "/audit"):
        assert client.get(path).status_code == 200
    assert client.get("/healthz").text == "ok"


def test_filters_and_search(
    app: stalwart.App, tasks: dict[str, stalwart.Task], client: TestClient
) -> None:  # type: ignore[type-arg]
    failed = failed_job(app, tasks)
    sign = tasks["sign"].enqueue("t", {}).id
    drain(app)
    page = client.get("/jobs?status=failed&error_class=RuntimeError").text
    assert f"#{sign}" in page and f"#{failed}" not in page
    page = client.get("/jobs?status=failed&queue=mail").text
    assert f"#{failed}" in page and f"#{sign}" not in page
    page = client.get("/jobs?status=failed&task=ok.sign&range=1h").text
    assert f"#{sign}" in page and f"#{failed}" not in page
    page = client.get("/jobs?status=failed&since=2000-01-01T00:00&until=2000-01-02T00:00").text
    assert f"#{sign}" not in page and "matches these filters" in page
    r = client.get(f"/jobs?id={failed}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/jobs/{failed}"
    assert client.get("/jobs?id=424242").status_code == 404
    assert client.get("/jobs?id=abc").status_code == 400
    # Allowlists: unknown status, range and sort are refused, not passed on.
    assert client.get("/jobs?status=everything").status_code == 400
    assert client.get("/jobs?status=failed&range=1y").status_code == 400
    assert client.get("/?sort=id;DROP").status_code == 400
    assert client.get("/jobs?status=failed&since=yesterday").status_code == 400
    assert client.get("/jobs?status=failed&cursor=1;2").status_code == 400
    assert client.get("/?sort=failed").status_code == 200


def test_keyset_pagination_visits_every_job_once(
    app: stalwart.App, tasks: dict[str, stalwart.Task]
) -> None:  # type: ignore[type-arg]
    Flaky.failing = False
    ids = set(app.enqueue_many(tasks["deliver"], [((i,), {}) for i in range(23)]).ids)
    drain(app)
    failing = set(app.enqueue_many(tasks["sign"], [(("t", {}), {}) for _ in range(12)]).ids)
    drain(app)
    c = client_for(app, page_size=5)
    for status, expected in (("finished", ids), ("failed", failing)):
        seen: list[int] = []
        url = f"/jobs?status={status}"
        while url:
            html = c.get(url).text
            seen += [int(i) for i in re.findall(r'href="/jobs/(\d+)"', html)]
            nxt = re.search(r'rel="next" href="([^"]+)"', html)
            url = nxt.group(1).replace("&amp;", "&") if nxt else ""
        assert len(seen) == len(set(seen)) and set(seen) == expected, status
        assert seen == sorted(seen, reverse=True)


def test_filters_no_index_serves_look_at_a_bounded_window(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    monkeypatch: pytest.MonkeyPatch,  # type: ignore[type-arg]
) -> None:
    from stalwart.store.reads import bounds

    monkeypatch.setattr(bounds, "SCAN_WINDOW", 4)
    Flaky.failing = False
    rare = tasks["echo"].enqueue("rare").id
    app.enqueue_many(tasks["deliver"], [((i,), {}) for i in range(10)])
    drain(app)
    c = client_for(app)
    url = "/jobs?status=finished&task=ok.echo"
    pages = 0
    found = False
    while url and not found:
        html = c.get(url).text
        pages += 1
        found = f'href="/jobs/{rare}"' in html
        nxt = re.search(r'rel="next" href="([^"]+)"', html)
        url = nxt.group(1).replace("&amp;", "&") if nxt else ""
        if not found:
            assert "Search older" in html
    assert found and pages == 3  # 10 newer jobs, 4 looked at per page


def test_job_detail_redaction_at_any_depth(
    app: stalwart.App, tasks: dict[str, stalwart.Task], client: TestClient
) -> None:  # type: ignore[type-arg]
    class Current(stalwart.CurrentAttributes):
        session_id: str | None = None
        tenant: int | None = None

    Current.session_id, Current.tenant = "sess-XYZ", 42
    # Secrets long enough that a random CSRF token in the page never contains one.
    job = tasks["sign"].enqueue(
        "tok-ABC", {"nested": [{"Secret-Key": "s3-nested"}], "ok": "visible"}
    )
    Current.session_id, Current.tenant = None, None
    job2 = tasks["deliver"].enqueue(1, password="hunter2", extra={"auth_token": "t0-extra"})
    html = client.get(f"/jobs/{job.id}").text + client.get(f"/jobs/{job2.id}").text
    for secret in ("tok-ABC", "s3-nested", "sess-XYZ", "hunter2", "t0-extra"):
        assert secret not in html
    assert "[redacted]" in html
    assert "visible" in html
    assert "&#34;tenant&#34;: 42" in html
    listing = client.get("/jobs?status=ready").text
    assert "hunter2" not in listing and "tok-ABC" not in listing
    # Configurable: with no redaction, values show.
    plain = client_for(app, redact=())
    assert "hunter2" in plain.get(f"/jobs/{job2.id}").text


def test_why_panel_reasons(
    app: stalwart.App, tasks: dict[str, stalwart.Task], client: TestClient
) -> None:  # type: ignore[type-arg]
    high = tasks["echo"].using(priority=10).enqueue(1).id
    same = tasks["echo"].enqueue(2).id
    mine = tasks["echo"].enqueue(3).id
    html = client.get(f"/jobs/{mine}").text
    assert "Why isn" in html
    assert "No worker is running" in html
    assert "1 of higher priority and 1 of the same priority enqueued earlier" in html
    # A worker that listens to other queues only.
    app.store.process_register(
        kind="worker",
        name="w-1",
        pid=4242,
        hostname="box-a",
        metadata={"queues": ["mail", "rep*"], "threads": 2},
    )
    html = client.get(f"/jobs/{mine}").text
    assert "No live worker takes jobs from queue &#39;default&#39;" in html
    assert "mail, rep*" in html
    app.store.process_register(
        kind="worker",
        name="w-2",
        pid=4343,
        hostname="box-b",
        metadata={"queues": ["def*"], "threads": 2},
    )
    html = client.get(f"/jobs/{mine}").text
    assert "No live worker" not in html
    later = tasks["echo"].using(run_after=timedelta(hours=2)).enqueue(4).id
    assert "It is scheduled for" in client.get(f"/jobs/{later}").text
    holder = tasks["sync"].enqueue(5).id
    blocked = tasks["sync"].enqueue(5).id
    html = client.get(f"/jobs/{blocked}").text
    assert "It waits on concurrency key" in html and f'href="/jobs/{holder}"' in html
    procs = client.get("/processes").text
    assert "box-a" in procs and "w-2" in procs and "4242" in procs and "rep*" in procs
    assert "in step" in procs and ">off<" not in procs
    # A host 120 s ahead of the database: its offset is on its row, marked off.
    app.store.clock.offset = -120.0
    skewed = app.store.process_register(kind="worker", name="w-3", pid=1, hostname="box-c")
    app.store.clock.offset = 0.0
    procs = client.get("/processes").text
    assert "120.0 s ahead" in procs and ">off<" in procs
    assert skewed and high and same


def test_recurring_page_lists_tasks_with_last_and_next_run(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    now = utcnow()
    job = tasks["echo"].enqueue("cron").id
    with app.store.engine.begin() as conn:
        conn.execute(
            insert(s.recurring_tasks).values(
                key="nightly/eu report",
                schedule="every day at 9am",
                time_zone="UTC",
                task_name="ok.echo",
                args="[]",
                kwargs="{}",
                description=SCRIPT,
                created_at=now,
                updated_at=now,
            )
        )
        conn.execute(
            insert(s.recurring_executions).values(
                task_key="nightly/eu report",
                run_at=now - timedelta(hours=1),
                job_id=job,
                created_at=now,
            )
        )
    html = client.get("/recurring").text
    assert (
        "nightly/eu report" in html and "every day at 9am" in html and f'href="/jobs/{job}"' in html
    )
    assert "09:00:00 UTC" in html  # the next run
    assert SCRIPT not in html and "&lt;script&gt;" in html
    if hasattr(app, "recurring") and hasattr(app.recurring, "run_now"):
        assert "Run now" in html

        class Current(stalwart.CurrentAttributes):
            client_ip: str | None = None

        action = re.search(r'action="(/recurring/[^"]+/run)"', html)
        assert action and action.group(1) == "/recurring/nightly%2Feu%20report/run"
        r = client.post(action.group(1), data={"csrf_token": token(client)})
        assert "Enqueued a run of the recurring task." in r.text
        [event] = app.store.audit_page()
        assert (event.action, event.target, event.affected) == (
            "run_recurring",
            "nightly/eu report",
            1,
        )
        [ran] = event.job_ids
        # The job carries the client IP the dashboard resolved (CurrentAttributes).
        assert '"client_ip":"testclient"' in (app.store.job_get(ran).context or "")
        assert (
            client.post("/recurring/nope/run", data={"csrf_token": token(client)}).status_code
            == 404
        )
    else:
        assert "app.recurring.run_now" in html
        r = client.post("/recurring/nightly/run", data={"csrf_token": token(client)})
        assert r.status_code == 501


# ---- escaping and bound parameters ----


def test_html_in_arguments_and_filters_is_escaped(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    job = tasks["echo"].enqueue({SCRIPT: SCRIPT, "q": SQLISH}).id
    pages = [
        client.get(f"/jobs/{job}").text,
        client.get("/jobs?status=ready").text,
        client.get(f"/jobs?status=ready&queue={SCRIPT}&task={SCRIPT}").text,
        client.get(f"/jobs?status=failed&error_class={SCRIPT}").text,
    ]
    for html in pages:
        assert SCRIPT not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in pages[0]
    assert "x&#39; OR 1=1 --" in pages[0]


def test_sql_in_filters_is_bound_and_matches_nothing(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    failed = failed_job(app, tasks)
    for status in ("failed", "finished", "ready"):
        for field in ("queue", "task", "error_class"):
            r = client.get("/jobs", params={"status": status, field: SQLISH})
            assert r.status_code == 200, (status, field)
            assert f'href="/jobs/{failed}"' not in r.text
    t = token(client)
    r = client.post(
        "/jobs/bulk",
        data={"csrf_token": t, "scope": "matching", "action": "discard", "queue": SQLISH},
    )
    assert "Discarded 0 job(s)." in r.text
    assert app.get_result(failed).status == "FAILED"


def test_ids_cursors_and_dates_out_of_range_are_400_or_404_never_500(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],
    client: TestClient,  # type: ignore[type-arg]
) -> None:
    failed = failed_job(app, tasks)
    huge, too_big = "99999999999999999999", str(2**63)
    for path, expected in (
        (f"/jobs?id={huge}", 400),
        (f"/jobs?id={too_big}", 400),
        (f"/jobs/{too_big}", 404),
        ("/jobs/" + "9" * 5000, 404),
        (f"/jobs?status=failed&cursor={huge}", 400),
        (f"/jobs?status=successful&cursor=0001-01-01T00:00:00_{huge}", 400),
        ("/jobs?status=failed&since=0001-01-01T00:00:00%2B01:00", 400),
        ("/jobs?status=failed&until=9999-12-31T23:59:59-01:00", 400),
        (f"/audit?before={huge}", 400),
    ):
        r = client.get(path)
        assert r.status_code == expected, (path, r.status_code)
        assert r.headers["x-content-type-options"] == "nosniff", path
    csrf = token(client)
    for path in (f"/jobs/{too_big}/cancel", f"/jobs/{too_big}/retry"):
        r = client.post(path, data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 404, path
        assert r.headers["x-frame-options"] == "DENY"
    r = client.post(
        "/jobs/bulk",
        data={"csrf_token": csrf, "action": "retry", "scope": "selected", "job_id": [too_big]},
    )
    assert r.status_code == 400
    r = client.post(
        "/jobs/bulk",
        data={"csrf_token": csrf, "action": "retry", "scope": "selected", "job_id": ["9" * 5000]},
    )
    assert r.status_code == 400
    assert app.get_result(failed).status == "FAILED"  # nothing was changed


# ---- served like a product ----


def test_security_headers_on_every_answer(app: stalwart.App, client: TestClient) -> None:
    for r in (
        client.get("/"),
        client.get("/", auth=("admin", "no")),
        TestClient(dashboard(app)).get("/"),
    ):
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
    assert client.get("/").headers["cache-control"] == "no-store"
    html = client.get("/").text
    assert "<script>" not in html and " onclick=" not in html and " style=" not in html


def test_compression_gzip_and_brotli(client: TestClient) -> None:
    r = client.get("/", headers={"accept-encoding": "gzip"})
    assert (
        r.headers["content-encoding"] == "gzip" and "accept-encoding" in r.headers["vary"].lower()
    )
    assert "<html" in r.text  # httpx decoded it
    raw = client.get("/", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in raw.headers
    if stalwart.web.HAS_BROTLI:
        assert (
            client.get("/", headers={"accept-encoding": "br, gzip"}).headers["content-encoding"]
            == "br"
        )


def test_static_assets_are_fingerprinted_and_immutable(
    app: stalwart.App, client: TestClient
) -> None:
    html = client.get("/").text
    css = re.search(r'href="(/static/app\.[0-9a-f]{12}\.css)"', html)
    js = re.search(r'src="(/static/app\.[0-9a-f]{12}\.js)"', html)
    assert css and js
    anon = TestClient(client.app)  # assets need no login
    r = anon.get(css.group(1), headers={"accept-encoding": "gzip"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")
    assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert r.headers["content-encoding"] == "gzip"
    etag = r.headers["etag"]
    assert anon.get(css.group(1), headers={"if-none-match": etag}).status_code == 304
    plain = anon.get("/static/app.css")
    assert plain.headers["cache-control"] == "no-cache" and plain.headers["etag"] == etag
    assert anon.get("/static/app.0123456789ab.css").status_code == 404
    assert anon.get("/static/..%2F..%2Fdashboard.py").status_code == 404


def test_request_body_limit(client: TestClient) -> None:
    t = token(client)
    r = client.post("/jobs/bulk", data={"csrf_token": t, "pad": "x" * 100_000})
    assert r.status_code == 413


def test_mounted_under_a_path(app: stalwart.App, tasks: dict[str, stalwart.Task]) -> None:  # type: ignore[type-arg]
    job = failed_job(app, tasks)
    outer = Starlette(routes=[Mount("/ops/jobs", app=dashboard(app, auth=AUTH))])
    c = TestClient(outer)
    c.auth = ("admin", "pw")
    html = c.get("/ops/jobs/").text
    assert 'href="/ops/jobs/jobs?status=failed"' in html
    css = re.search(r'href="(/ops/jobs/static/app\.[0-9a-f]{12}\.css)"', html)
    assert css and c.get(css.group(1)).status_code == 200
    r = c.post(
        f"/ops/jobs/jobs/{job}/retry",
        data={"csrf_token": token(c, "/ops/jobs/")},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"].startswith(f"/ops/jobs/jobs/{job}")
    assert c.cookies.get("stalwart_csrf") is not None


def test_client_ip_behind_a_trusted_proxy_feeds_allowlist_and_audit(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    job = failed_job(app, tasks)
    web = dashboard(
        app,
        auth=AUTH,
        client_ip=ClientIPConfig(trusted_proxies=["10.0.0.0/8"], forwarded_for=True),
        allow_ips=["203.0.113.0/24"],
    )
    c = TestClient(web, client=("10.1.2.3", 4000))
    c.auth = ("admin", "pw")
    assert c.get("/").status_code == 403  # the proxy itself is not allowed in
    via = {"x-forwarded-for": "198.51.100.7, 203.0.113.9"}
    assert c.get("/", headers={"x-forwarded-for": "203.0.113.9, 198.51.100.7"}).status_code == 403
    html = c.get("/", headers=via).text
    t = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert t
    r = c.post(f"/jobs/{job}/retry", data={"csrf_token": t.group(1)}, headers=via)
    assert r.status_code == 200
    [event] = app.store.audit_page()
    assert event.client_ip == "203.0.113.9"
    # An untrusted peer's forwarding header is ignored.
    spoof = TestClient(web, client=("198.51.100.50", 4000))
    spoof.auth = ("admin", "pw")
    assert spoof.get("/", headers={"x-forwarded-for": "203.0.113.9"}).status_code == 403


def test_stalwart_dashboard_command_serves_it(tmp_path: Path) -> None:
    """`stalwart dashboard` runs a real server: closed without users, open with them."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    stalwart.App(url).migrate()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "STALWART_DASHBOARD_ADMINS": "ops:pw-123"}
    exe = str(Path(sys.executable).with_name("stalwart"))
    cmd = [exe, "--database", url, "dashboard", "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline and proc.poll() is None, "server did not start"
                time.sleep(0.1)
        assert httpx.get(base + "/").status_code == 401
        r = httpx.get(base + "/", auth=("ops", "pw-123"), headers={"accept-encoding": "gzip"})
        assert r.status_code == 200 and r.headers["content-encoding"] == "gzip"
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert "server" not in r.headers
    finally:
        proc.terminate()
        proc.wait(15)


def test_metrics_behind_auth_or_its_bearer_token(
    app: stalwart.App,
    tasks: dict[str, stalwart.Task],  # type: ignore[type-arg]
) -> None:
    tasks["deliver"].enqueue(1)
    tasks["echo"].enqueue(2)
    anonymous = client_for(app, user=None, metrics_token="s3cret-token")
    assert anonymous.get("/metrics").status_code == 401
    wrong = anonymous.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    scraped = anonymous.get("/metrics", headers={"Authorization": "Bearer s3cret-token"})
    assert scraped.status_code == 200
    assert "stalwart_database_up 1.0" in scraped.text
    assert 'stalwart_queue_jobs{queue="mail",state="ready"} 1.0' in scraped.text
    assert 'stalwart_queue_jobs{queue="default",state="ready"} 1.0' in scraped.text
    # The token opens /metrics only; signed-in users see it without one.
    assert anonymous.get("/", headers={"Authorization": "Bearer s3cret-token"}).status_code == 401
    signed_in = client_for(app)
    assert "stalwart_queue_oldest_ready_age_seconds" in signed_in.get("/metrics").text


def test_healthz_touches_the_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'health.db'}"
    app = stalwart.App(config=stalwart.config.Config(database_url=url, source="tests"))
    client = client_for(app, user=None)
    sqlite3.connect(tmp_path / "health.db").close()  # a database without the tables
    answer = client.get("/healthz")
    assert answer.status_code == 503
    assert "stalwart migrate" in answer.json()["reason"]
    app.migrate()
    time.sleep(0.6)  # past the cached answer
    assert client.get("/healthz").text == "ok"
    # A server that is not there (nothing listens on the port): 503, promptly.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    down = stalwart.App(
        config=stalwart.config.Config(
            database_url=f"postgresql://postgres@127.0.0.1:{port}/x", source="tests"
        )
    )
    gone = client_for(down, user=None).get("/healthz")
    assert gone.status_code == 503 and gone.json()["status"] == "unavailable"
    app.close()
