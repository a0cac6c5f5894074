"""A private MariaDB server for tests that stop and start it (the shared one must never
be restarted): a data directory of its own made by mariadb-install-db, a server on a
free port, removed afterwards. Needs Debian's mariadb-server binaries; elsewhere the
test is skipped, saying why."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class PrivateMariaDB:
    dir: Path
    port: int
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"mysql://root@127.0.0.1:{self.port}/stalwart_probe"

    def _admin(self, *args: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            ["mysqladmin", "-h127.0.0.1", f"-P{self.port}", "-uroot", *args],
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.dir / 'data'}", "--user=root",
             f"--port={self.port}", "--bind-address=127.0.0.1",
             f"--socket={self.dir / 'sock'}", f"--pid-file={self.dir / 'pid'}",
             f"--log-error={self.dir / 'error.log'}", "--skip-log-bin",
             "--innodb-buffer-pool-size=32M"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while self._admin("status").returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.dir / "error.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the private MariaDB did not start:\n{log}")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        self._admin("shutdown")
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def why_unavailable() -> str | None:
    for tool in ("mariadb-install-db", "mariadbd", "mysqladmin", "mysql"):
        if shutil.which(tool) is None:
            return f"{tool} not found (Debian's mariadb-server)"
    return None


@contextmanager
def private_mariadb() -> Iterator[PrivateMariaDB]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    root = Path(tempfile.mkdtemp(prefix="stalwart-mariadb-"))
    server = PrivateMariaDB(root, port)
    try:
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={root / 'data'}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db"],
            check=True,
            capture_output=True,
            timeout=120,
        )  # fmt: skip
        server.start()
        subprocess.run(
            ["mysql", "-h127.0.0.1", f"-P{port}", "-uroot", "-e", "CREATE DATABASE stalwart_probe"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
