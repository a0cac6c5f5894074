"""Health checks as Kubernetes asks them: `stalwart start --health-port` answers
/readyz 503 within 5 s of PostgreSQL stopping and 200 within 5 s of it coming back
(a private server, stopped and started by the test); /livez while the supervisor's
loop turns; `stalwart check` exits 2 when the database is missing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

import stalwart
from stalwart.config import Config

from .fleet import REPO, DrainedPopen, stop, write_config
from .helpers import wait_for
from .pgserver import private_postgres, why_unavailable
from .test_metrics_fleet import free_port


def probe(port: int, path: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.slow
def test_readyz_follows_postgresql_stopping_and_coming_back(tmp_path: Path) -> None:
    why = why_unavailable()
    if why is not None:
        print(f"\n*** SKIPPED: no private PostgreSQL server can be made here: {why} ***")
        pytest.skip(f"no private PostgreSQL server can be made here: {why}")
    with private_postgres() as server:
        app = stalwart.App(config=Config(database_url=server.url, source="tests"))
        app.migrate()
        app.close()
        write_config(tmp_path / "stalwart.toml", server.url, processes=1)
        port = free_port()
        env = {**os.environ, "PYTHONPATH": str(REPO), "STALWART_TEST_LOG": str(tmp_path / "ev")}
        sup = DrainedPopen(
            [sys.executable, "-c", "from stalwart.cli import main; main()", "start",
             "--health-port", str(port), "--log-level", "INFO"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        sup.start_draining()
        try:
            wait_for(lambda: _status(port, "/readyz") == 200, 30, what="/readyz to say ready")
            status, body = probe(port, "/livez")
            assert status == 200 and body["status"] == "alive", body
            server.stop()
            stopped = time.monotonic()
            wait_for(lambda: _status(port, "/readyz") == 503, 5, what="503 within 5 s")
            status, body = probe(port, "/readyz")
            assert status == 503 and body["status"] == "unavailable", body
            assert "database" in str(body["reason"])
            # Liveness is the supervisor's loop, not the database: still alive.
            assert _status(port, "/livez") == 200
            time.sleep(max(0.0, 3 - (time.monotonic() - stopped)))
            server.start()
            wait_for(lambda: _status(port, "/readyz") == 200, 5, what="200 within 5 s")
            # The outage was told once per process, and "back" only once it was.
            wait_for(lambda: "database is back" in sup.output(), 30, what="'back' in the log")
        finally:
            out = stop(sup)
        assert sup.returncode == 0, out
        unavailable = sum("database unavailable" in line for line in out.splitlines())
        assert 1 <= unavailable <= 6, out  # one per process (supervisor, children)
        assert out.count("database is back") <= unavailable, out


def _status(port: int, path: str) -> int:
    try:
        return probe(port, path)[0]
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_check_exits_2_on_a_wrong_password(tmp_path: Path) -> None:
    why = why_unavailable()
    if why is not None:
        print(f"\n*** SKIPPED: no private PostgreSQL server can be made here: {why} ***")
        pytest.skip(f"no private PostgreSQL server can be made here: {why}")
    with private_postgres(password="right-one") as server:
        base = server.url.replace("postgres@", "postgres:{}@")
        stalwart.App(config=Config(database_url=base.format("right-one"), source="t")).migrate()
        for password, code in (("wrong-one", 2), ("right-one", 0)):
            done = subprocess.run(
                [sys.executable, "-c", "from stalwart.cli import main; main()", "check",
                 "--database", base.format(password)],
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=60,
            )  # fmt: skip
            assert done.returncode == code, done.stdout + done.stderr
        assert "password authentication failed" in subprocess.run(
            [sys.executable, "-c", "from stalwart.cli import main; main()", "check",
             "--database", base.format("wrong-one")],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        ).stderr  # fmt: skip


def test_check_exits_2_on_a_missing_database(tmp_path: Path) -> None:
    from tests.conftest import SERVER_URLS

    missing = [
        f"sqlite:///{tmp_path / 'missing.db'}",
        SERVER_URLS["postgresql"].rsplit("/", 1)[0] + "/stalwart_no_such_database",
        SERVER_URLS["mariadb"].rsplit("/", 1)[0] + "/stalwart_no_such_database",
    ]
    for url in missing:
        done = subprocess.run(
            [sys.executable, "-c", "from stalwart.cli import main; main()", "check",
             "--database", url],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=60,
        )  # fmt: skip
        assert done.returncode == 2, done.stdout + done.stderr
        assert "cannot connect" in done.stderr and "Configuration OK" not in done.stdout
    assert not (tmp_path / "missing.db").exists()  # checking created nothing


def test_check_exits_2_on_pending_migrations(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    app = stalwart.App(config=Config(database_url=url, source="tests"))
    app.migrate()
    with app.store.engine.begin() as conn:
        conn.exec_driver_sql("DELETE FROM stalwart_schema_migrations WHERE version = '0003'")
    app.close()
    done = subprocess.run(
        [sys.executable, "-c", "from stalwart.cli import main; main()", "--database", url,
         "check", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    result = json.loads(done.stdout)
    assert result["ok"] is False
    assert "0003" in result["problems"][0] and "stalwart migrate" in result["problems"][0]
