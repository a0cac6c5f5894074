"""A fleet of real `stalwart start` processes for tests: a directory with a
stalwart.toml for tests/apps/procapp.py, the events its jobs record, and helpers to
start, signal and inspect the processes. The `fleet` fixture is in conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

import stalwart
from stalwart import JobStatus

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Fleet:
    """A directory with stalwart.toml for tests/apps/procapp.py, and helpers."""

    dir: Path
    url: str
    log: Path
    app: stalwart.App
    started: list[DrainedPopen] = field(default_factory=list)

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = f"{REPO}{os.pathsep}{env.get('PYTHONPATH', '')}"
        env["STALWART_TEST_LOG"] = str(self.log)
        return env

    def start(self, *args: str, env: dict[str, str] | None = None) -> DrainedPopen:
        """`stalwart start` with ``args``; ``env``: variables added to its environment."""
        proc = DrainedPopen(
            [
                sys.executable,
                "-c",
                "from stalwart.cli import main; main()",
                "--log-level",
                "INFO",
                "start",
                *args,
            ],
            cwd=self.dir,
            env={**self.env(), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        proc.start_draining()
        self.started.append(proc)
        return proc

    def kill_leftovers(self) -> None:
        """A failed test must not leave a fleet running: kill supervisors and children."""
        for proc in self.started:
            if proc.poll() is None:
                for pid in [*children_of(proc.pid), proc.pid]:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                proc.communicate(timeout=10)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from stalwart.cli import main; main()", *args],
            cwd=self.dir,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def events(self) -> list[tuple[str, int, int]]:
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            event, job, pid = line.split()[:3]
            out.append((event, int(job), int(pid)))
        return out

    def timed_events(self) -> list[tuple[str, int, int, float, str]]:
        """(event, job id, pid, unix time, key) of every recorded event."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            event, job, pid, at, key = line.split()
            out.append((event, int(job), int(pid), float(at), key))
        return out

    def enqueue(self, task: str, *args: object) -> int:
        return self.app.enqueue(task, args).id

    def status(self, job_id: int) -> JobStatus:
        return self.app.get_result(job_id).status

    def configure(self, **options: object) -> None:
        """Write this fleet's stalwart.toml anew (see `write_config`)."""
        write_config(self.dir / "stalwart.toml", self.url, **options)  # type: ignore[arg-type]

    def started_at(self, job_id: int) -> list[float]:
        """When each run of a job started (its "start" events)."""
        return [
            at for event, job, _, at, _ in self.timed_events() if event == "start" and job == job_id
        ]


class DrainedPopen(subprocess.Popen[str]):
    """A fleet whose output is read as it comes: one log line per job fills a pipe's
    64 KiB soon, and a process writing to a full pipe stalls. `communicate` returns
    what was read."""

    def start_draining(self) -> None:
        self._lines: list[str] = []
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        assert self.stdout is not None
        for line in self.stdout:
            self._lines.append(line)

    def output(self) -> str:
        """What it printed so far."""
        return "".join(self._lines)

    def communicate(
        self, input: str | None = None, timeout: float | None = None
    ) -> tuple[str, str]:
        self.wait(timeout)
        self._reader.join(10)
        return self.output(), ""


def write_config(
    path: Path,
    url: str,
    *,
    processes: int = 2,
    threads: int = 1,
    maintenance: float = 60,
    prefetch: int | str = 0,
    **overrides: object,
) -> None:
    body = {
        "app": "tests.apps.procapp:app",
        "database_url": url,
        "heartbeat_interval": 0.3,
        "alive_threshold": 2,
        "shutdown_timeout": 1,
        "max_crashes": 3,
        **overrides,
    }
    lines = [f"{k} = {json.dumps(v)}" for k, v in body.items()]
    lines += [
        "[[workers]]",
        'queues = ["*"]',
        f"threads = {threads}",
        f"processes = {processes}",
        f"prefetch = {json.dumps(prefetch)}",
        "polling_interval = 0.05",
        "[[dispatchers]]",
        "polling_interval = 0.1",
        f"concurrency_maintenance_interval = {maintenance}",
    ]
    path.write_text("\n".join(lines) + "\n")


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 30) -> str:
    if proc.poll() is None:
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=timeout)
    return out


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes.
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []
