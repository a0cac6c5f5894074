"""A private PostgreSQL server for tests that stop and start it (the shared one must
never be restarted): a Debian cluster of its own on a free port, created with trust
auth, dropped afterwards. Needs Debian's postgresql-common (pg_createcluster) and root,
as the developers' machines and CI have; elsewhere the test is skipped, saying why."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


@dataclass
class PrivatePostgres:
    version: str
    name: str
    port: int

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/stalwart_probe"

    def ctl(self, action: str) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", self.version, self.name, action],
            check=True,
            capture_output=True,
            timeout=60,
        )

    def stop(self) -> None:
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", "-m", "fast",
             self.version, self.name, "stop"],
            check=True,
            capture_output=True,
            timeout=60,
        )  # fmt: skip

    def start(self) -> None:
        self.ctl("start")


def why_unavailable() -> str | None:
    if shutil.which("pg_createcluster") is None:
        return "pg_createcluster not found (Debian's postgresql-common)"
    if os.geteuid() != 0:
        return "creating a PostgreSQL cluster needs root"
    if not Path("/usr/lib/postgresql").is_dir():
        return "no PostgreSQL server binaries in /usr/lib/postgresql"
    return None


@contextmanager
def private_postgres(password: str | None = None) -> Iterator[PrivatePostgres]:
    """With ``password``: the postgres user has it, and every connection must give it
    (scram-sha-256); without: trust."""
    version = sorted(os.listdir("/usr/lib/postgresql"), key=lambda v: int(v.split(".")[0]))[-1]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = PrivatePostgres(version, f"stalwart_{uuid.uuid4().hex[:8]}", port)
    initdb = ["--auth=trust"]
    if password is not None:
        pwfile = Path(f"/tmp/{server.name}.pw")
        pwfile.write_text(password + "\n")
        os.chmod(pwfile, 0o644)  # read by initdb as the postgres user
        initdb = ["--auth=scram-sha-256", f"--pwfile={pwfile}"]
    subprocess.run(
        ["pg_createcluster", version, server.name, "-p", str(port), "--start-conf", "manual",
         "--", *initdb],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    try:
        server.start()
        env = {**os.environ, "PGPASSWORD": password or ""}
        subprocess.run(
            ["psql", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "-c",
             "CREATE DATABASE stalwart_probe"],
            check=True,
            capture_output=True,
            timeout=60,
            env=env,
        )  # fmt: skip
        yield server
    finally:
        subprocess.run(
            ["pg_dropcluster", "--stop", version, server.name], capture_output=True, timeout=120
        )
        Path(f"/tmp/{server.name}.pw").unlink(missing_ok=True)
