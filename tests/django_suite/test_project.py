"""End to end: a Django project (tests/django_suite/project) as real processes.

`manage.py migrate` and `manage.py stalwart migrate`, `manage.py check --database`
before and after, the site under `runserver` with a view that enqueues inside
``atomic()``, `manage.py stalwart start` running the ORM job, and the dashboard signed
in as a Django staff user in Chromium (mounted in the ASGI app under uvicorn, and
served by `manage.py stalwart dashboard` for a WSGI project).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stalwart.contrib.django import stalwart_backend
from tests.conftest import drop_all
from tests.helpers import wait_for
from tests.test_examples import free_port, http, served

PROJECT = Path(__file__).resolve().parent / "project"
ROOT = PROJECT.parents[2]
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
pytestmark = pytest.mark.slow


def env() -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "shopsite.settings",
        "PYTHONPATH": os.pathsep.join([str(PROJECT), str(ROOT)]),
    }


def manage(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT,
        env=env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def project() -> None:
    """Django's tables and Stalwart's, created by the project's own commands."""
    drop_all(stalwart_backend().app.store)
    checked = manage("check", "--database", "default", "--fail-level", "WARNING", check=False)
    assert checked.returncode != 0
    assert "stalwart.W002" in checked.stderr and "stalwart migrate" in checked.stderr
    manage("migrate", "--run-syncdb", "-v", "0")
    applied = manage("stalwart", "migrate").stdout
    assert "Applied migrations: 0001" in applied, applied
    assert "Schema is up to date" in manage("stalwart", "migrate").stdout
    manage("check", "--database", "default", "--fail-level", "WARNING")


def test_view_enqueues_in_atomic_and_manage_py_stalwart_start_runs_the_orm_job(
    project: None,
) -> None:
    port = free_port()
    server = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"]
    with served(server, PROJECT, env(), port):
        base = f"http://127.0.0.1:{port}"
        status, kept = http("POST", f"{base}/orders", {"item": "teapot"})
        assert status == 201, kept
        status, refused = http("POST", f"{base}/orders", {"item": "kettle", "fail": True})
        assert status == 402, refused
        # The refused order's job rolled back with it: no such result.
        shown = manage("stalwart", "jobs", "show", refused["job_id"], check=False)
        assert shown.returncode != 0 and "no job" in shown.stderr.lower(), shown.stderr
        listed = manage("stalwart", "jobs", "list", "--status", "ready", "--json").stdout
        assert f'"id": {kept["job_id"]}' in listed and "shop.tasks.confirm_order" in listed

        worker = subprocess.Popen(
            [sys.executable, "manage.py", "stalwart", "start"],
            cwd=PROJECT,
            env=env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            order_url = f"{base}/orders/{kept['order_id']}"
            wait_for(
                lambda: http("GET", order_url)[1]["confirmed_by_job"] == kept["job_id"],
                what="the worker process to confirm the order",
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            output = worker.communicate(timeout=60)[0]
        assert worker.returncode == 0, output
    shown = manage("stalwart", "jobs", "show", kept["job_id"], "--json").stdout
    assert '"status": "SUCCESSFUL"' in shown and '"return_value": "teapot"' in shown


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="scripts/ensure-browser.sh")
def test_dashboard_signed_in_as_a_django_staff_user(project: None, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    manage(
        "shell",
        "-c",
        "from django.contrib.auth.models import User; "
        "User.objects.filter(username__in=['ada', 'bob']).delete(); "
        "User.objects.create_superuser('ada', 'ada@example.com', 'pw-ada'); "
        "User.objects.create_user('bob', 'bob@example.com', 'pw-bob')",
    )
    manage("shell", "-c", "from shop.tasks import confirm_order; confirm_order.enqueue(1)")
    port, wsgi_port = free_port(), free_port()
    asgi = [sys.executable, "-m", "uvicorn", "shopsite.asgi:application", "--port", str(port)]
    dash = [sys.executable, "manage.py", "stalwart", "dashboard", "--port", str(wsgi_port)]
    shots = DOCS if os.environ.get("STALWART_SCREENSHOTS") == "1" else tmp_path
    with (
        served(asgi, PROJECT, env(), port),
        served(dash, PROJECT, env(), wsgi_port),
        sync_api.sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        base = f"http://127.0.0.1:{port}"

        def sign_in(user: str, password: str) -> object:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(base + "/jobs/")
            assert "/admin/login/" in page.url  # sent to Django's sign-in
            page.fill("#id_username", user)
            page.fill("#id_password", password)
            page.click("input[type=submit]")
            return context, page

        # Bob is not staff: signed in to Django, still not let in.
        context, page = sign_in("bob", "pw-bob")
        page.goto(base + "/jobs/")
        assert page.title() != "Overview · Stalwart"
        context.close()

        context, page = sign_in("ada", "pw-ada")
        page.wait_for_url(base + "/jobs/")
        assert page.title() == "Overview · Stalwart"
        assert "ada" in page.content()  # the signed-in user
        page.screenshot(path=str(shots / "django-dashboard.png"), full_page=True)
        page.goto(base + "/jobs/jobs?status=ready")
        assert "shop.tasks.confirm_order" in page.content()
        # The WSGI way: `manage.py stalwart dashboard` reads the same session cookie.
        page.goto(f"http://127.0.0.1:{wsgi_port}/")
        assert page.title() == "Overview · Stalwart"
        context.close()
        anonymous = browser.new_context().new_page()
        response = anonymous.goto(f"http://127.0.0.1:{wsgi_port}/")
        assert response is not None and response.status == 401
        browser.close()
