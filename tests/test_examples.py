"""The runnable examples, as real processes: examples/fastapi under uvicorn, with its
embedded worker; examples/flask under Flask's own server. On each database."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import stalwart

from .helpers import count, wait_for

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def http(method: str, url: str, body: object | None = None) -> tuple[int, dict]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"content-type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


@contextmanager
def served(
    args: list[str], cwd: Path, env: dict[str, str], port: int
) -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen(
        args, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:

        def up() -> bool:
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            with socket.socket() as s:
                return s.connect_ex(("127.0.0.1", port)) == 0

        wait_for(up, what="the server to listen")
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def test_fastapi_example_runs_jobs_in_its_uvicorn_process(app: stalwart.App, db_url: str) -> None:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "app:api", "--port", str(port), "--lifespan", "on"]
    env = {"STALWART_DATABASE_URL": db_url}
    with served(args, ROOT / "examples" / "fastapi", env, port) as proc:
        status, body = http("POST", f"http://127.0.0.1:{port}/signups", {"email": "a@b.c"})
        assert status == 202, body
        job_id = body["job_id"]

        def done() -> bool:
            return (
                http("GET", f"http://127.0.0.1:{port}/jobs/{job_id}")[1]["status"] == "SUCCESSFUL"
            )

        wait_for(done, what="the embedded worker to run the job")
        _, result = http("GET", f"http://127.0.0.1:{port}/jobs/{job_id}")
        assert result["return_value"] == {"sent_to": "a@b.c", "requested_from": "127.0.0.1"}
        # The embedded worker is registered while the server runs ...
        assert count(app.store, "processes", kind="worker") == 1
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert proc.returncode in (0, -signal.SIGTERM), output
    # ... and deregistered by the graceful shutdown of the lifespan.
    assert count(app.store, "processes") == 0
    assert "Application shutdown complete" in output


def test_fastapi_shutdown_lets_a_running_job_finish(app: stalwart.App, db_url: str) -> None:
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "slow:api", "--port", str(port)]
    env = {"STALWART_DATABASE_URL": db_url, "PYTHONPATH": str(ROOT / "examples" / "fastapi")}
    with served(args, ROOT / "tests" / "apps", env, port) as proc:
        status, body = http("POST", f"http://127.0.0.1:{port}/slow", {})
        assert status == 202, body
        wait_for(lambda: app.get_result(body["job_id"]).status == "RUNNING", what="the job")
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
        # uvicorn re-raises the signal once it has shut down gracefully.
        assert proc.returncode in (0, -signal.SIGTERM), output
    result = app.get_result(body["job_id"])
    assert result.status == "SUCCESSFUL", result.errors
    assert result.return_value == "finished after the shutdown began"


def test_flask_example_commits_and_rolls_back_jobs_with_its_orders(
    app: stalwart.App, db_url: str, tmp_path: Path
) -> None:
    cwd = ROOT / "examples" / "flask"
    env = {"STALWART_DATABASE_URL": db_url, "STALWART_APP": "app:jobs"}
    flask = [sys.executable, "-m", "flask", "--app", "app"]
    subprocess.run([*flask, "init-db"], cwd=cwd, env={**os.environ, **env}, check=True, timeout=60)
    port = free_port()
    with served([*flask, "run", "--port", str(port)], cwd, env, port):
        base = f"http://127.0.0.1:{port}"
        status, kept = http("POST", f"{base}/orders", {"item": "teapot"})
        assert status == 201, kept
        status, dropped = http("POST", f"{base}/orders", {"item": "kettle", "fail": True})
        assert status == 500, dropped
        # The rolled-back job is not stored at all; the committed one waits.
        with pytest.raises(stalwart.JobNotFound):
            app.get_result(dropped["job_id"])
        assert app.get_result(kept["job_id"]).status == "READY"
        # A real `stalwart start` beside the web app runs it, with the ORM.
        done = subprocess.run(
            [str(Path(sys.executable).parent / "stalwart"), "start", "--drain"],
            cwd=cwd,
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert app.get_result(kept["job_id"]).return_value == "confirmed teapot"
        assert http("GET", f"{base}/orders/{kept['order_id']}") == (
            200,
            {"item": "teapot", "confirmed": True},
        )
    from sqlalchemy import create_engine, text

    from stalwart.store.engine import normalize_url

    engine = create_engine(normalize_url(db_url))
    with engine.begin() as conn:
        assert conn.execute(text("SELECT item FROM flask_orders")).scalars().all() == ["teapot"]
        conn.execute(text("DROP TABLE flask_orders"))
    engine.dispose()
