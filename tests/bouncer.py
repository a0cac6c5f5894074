"""A private PgBouncer in transaction pooling mode, in front of the test PostgreSQL:
its own directory (ini, userlist, log), its own port and process, stopped afterwards.
Installed by scripts/ensure-pgbouncer.sh (`make test` runs it); where it is missing the
tests that need it are skipped, saying why."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

BINARY = "/usr/sbin/pgbouncer"


@dataclass
class Bouncer:
    port: int
    dir: Path
    target: str  # the direct URL it pools connections to
    command: list[str]
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"pgbouncer did not start: {err}\n{self.log()}") from None
                time.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM: PgBouncer's immediate shutdown, every client connection closed."""
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def url_for(self, direct: str) -> str:
        """``direct`` (a URL of the PostgreSQL behind it) through the pooler."""
        return make_url(direct).set(host="127.0.0.1", port=self.port).render_as_string(False)

    @property
    def url(self) -> str:
        return self.url_for(self.target)

    def log(self) -> str:
        path = self.dir / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""


def why_unavailable() -> str | None:
    if not Path(BINARY).exists():
        return f"{BINARY} not found: run scripts/ensure-pgbouncer.sh (Debian's pgbouncer)"
    return None


@contextmanager
def pgbouncer(direct_url: str, pool_size: int = 20) -> Iterator[Bouncer]:
    """PgBouncer (pool_mode = transaction) for the server of ``direct_url``."""
    target = make_url(direct_url)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    root = Path(tempfile.mkdtemp(prefix="stalwart-pgbouncer-"))
    user = target.username or "postgres"
    (root / "userlist.txt").write_text(f'"{user}" "{target.password or ""}"\n')
    (root / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={target.host or '127.0.0.1'} port={target.port or 5432}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {root / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\nmax_client_conn = 1000\n"
        f"logfile = {root / 'pgbouncer.log'}\npidfile = {root / 'pgbouncer.pid'}\n"
        f"admin_users = {user}\n"
    )
    command = [BINARY, str(root / "pgbouncer.ini")]
    if os.geteuid() == 0:
        # PgBouncer refuses to run as root: it drops to the postgres user.
        shutil.chown(root, "postgres")
        for f in root.iterdir():
            shutil.chown(f, "postgres")
        command[1:1] = ["-u", "postgres"]
    running = Bouncer(port, root, direct_url, command)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        shutil.rmtree(root, ignore_errors=True)
