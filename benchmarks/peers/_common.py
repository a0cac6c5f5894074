"""Shared helpers for the peer benchmarks (timing, RSS, DSN handling, worker processes).

Every peer drains its queue with W *worker processes* (one database connection each),
started from the peer's own script with ``--worker``.  The parent waits until every worker
has imported its libraries and connected, then releases them all at once and starts the
drain clock; each worker reports the ``time.monotonic()`` at which it finished (on Linux
that clock is system-wide, so parent and worker timestamps are comparable) and its own
peak RSS from ``resource.getrusage(RUSAGE_SELF)``.

``peak_rss_mb`` in the result is the *sum of the workers' peak RSS*: the memory a
deployment of W workers of that system needs.  The enqueue step runs in the calling
process and is left out, so the number does not depend on what the caller has imported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypedDict
from urllib.parse import quote, urlencode

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_JOBS = 20_000
DEFAULT_WORKERS = 2

# Lines a worker writes to stdout that belong to the protocol start with this marker, so
# anything else a library prints there (pgqueuer can log to stdout) is ignored.
_MARK = "@@peer "
# Workers still running this long after they were started are killed (a hung peer must
# not hang the whole benchmark run).
WORKER_DEADLINE_S = 300.0


class PeerResult(TypedDict):
    system: str
    jobs: int
    enqueue_per_s: float
    drain_per_s: float
    peak_rss_mb: float


def peak_rss_mb_self() -> float:
    """Peak RSS of this process in MiB (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def with_dbname(dsn: str, dbname: str) -> str:
    """Return *dsn* pointing at database *dbname* (same host, user, options).

    The result is always a ``postgresql://`` URL, which both psycopg and asyncpg accept
    (asyncpg cannot parse ``key=value`` conninfo strings).
    """
    params: dict[str, Any] = dict(conninfo_to_dict(dsn))
    params.pop("dbname", None)
    user = params.pop("user", None)
    password = params.pop("password", None)
    host = params.pop("host", None) or "localhost"
    port = params.pop("port", None)
    auth = ""
    if user:
        auth = quote(str(user), safe="")
        if password:
            auth += ":" + quote(str(password), safe="")
        auth += "@"
    netloc = "" if host.startswith("/") else host
    if netloc and port:
        netloc += f":{port}"
    if not netloc:  # unix-socket directory: pass it as a query parameter
        params["host"] = host
        if port:
            params["port"] = port
    query = f"?{urlencode(params)}" if params else ""
    return f"postgresql://{auth}{netloc}/{quote(dbname, safe='')}{query}"


def ensure_database(dsn: str, dbname: str) -> str:
    """Create database *dbname* next to the one *dsn* names if missing; return its DSN."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
        if exists is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(dbname)))
    return with_dbname(dsn, dbname)


def parse_args(
    description: str,
    argv: Sequence[str] | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The shared CLI: ``--dsn``, ``--jobs``, ``--workers`` (+ the hidden worker switch).

    *extra* may add peer-specific tuning options; they all need defaults.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dsn", default=DEFAULT_DSN, help="PostgreSQL DSN (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="jobs to enqueue and drain")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="worker processes")
    # Internal: run as one drain worker of a parent benchmark (JSON-encoded options).
    parser.add_argument("--worker", metavar="JSON", default=None, help=argparse.SUPPRESS)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.workers < 1:
        parser.error("--jobs and --workers must be >= 1")
    return args


# --------------------------------------------------------------------------- worker side


def worker_options(raw: str) -> dict[str, Any]:
    options: dict[str, Any] = json.loads(raw)
    return options


def worker_ready_and_wait() -> None:
    """Tell the parent this worker is connected, then block until it says go."""
    sys.stdout.write(f"{_MARK}ready\n")
    sys.stdout.flush()
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"worker: expected 'go' from parent, got {line!r}")


def worker_report(jobs_run: int, finished_at: float) -> None:
    """Send this worker's result (jobs run, monotonic finish time, own peak RSS)."""
    report = {"jobs_run": jobs_run, "finished_at": finished_at, "rss_mb": peak_rss_mb_self()}
    sys.stdout.write(f"{_MARK}result {json.dumps(report)}\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------- parent side


@dataclass(frozen=True)
class DrainOutcome:
    jobs_run: int
    elapsed_s: float
    rss_mb_sum: float


def _read_marked(proc: subprocess.Popen[str], what: str) -> str:
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith(_MARK):
            return line[len(_MARK) :].strip()
    code = proc.wait()
    raise RuntimeError(f"peer worker exited (code {code}) before sending {what!r}")


def run_workers(script: str, worker_opts: Sequence[dict[str, Any]]) -> DrainOutcome:
    """Start one ``script --worker`` process per entry, release them together, collect.

    The drain clock starts when the parent releases the (already connected) workers and
    stops at the latest monotonic finish time any worker reports.
    """
    procs: list[subprocess.Popen[str]] = []

    def kill_all() -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()

    watchdog = threading.Timer(WORKER_DEADLINE_S, kill_all)
    watchdog.daemon = True
    watchdog.start()
    try:
        for opts in worker_opts:
            procs.append(
                subprocess.Popen(
                    [sys.executable, os.path.abspath(script), "--worker", json.dumps(opts)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                    bufsize=1,
                )
            )
        for proc in procs:
            if _read_marked(proc, "ready") != "ready":
                raise RuntimeError("peer worker sent an unexpected message instead of 'ready'")
        started = time.monotonic()
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        reports: list[dict[str, Any]] = []
        for proc in procs:
            message = _read_marked(proc, "result")
            if not message.startswith("result "):
                raise RuntimeError(f"peer worker sent {message!r} instead of a result")
            reports.append(json.loads(message[len("result ") :]))
        for proc in procs:
            proc.communicate()  # closes stdin, reads whatever is left on stdout
            if proc.returncode != 0:
                raise RuntimeError(f"peer worker exited with code {proc.returncode}")
    finally:
        watchdog.cancel()
        kill_all()
        for proc in procs:
            proc.wait()
    return DrainOutcome(
        jobs_run=sum(int(r["jobs_run"]) for r in reports),
        elapsed_s=max(float(r["finished_at"]) for r in reports) - started,
        rss_mb_sum=sum(float(r["rss_mb"]) for r in reports),
    )


def result(system: str, jobs: int, enqueue_s: float, drain: DrainOutcome) -> PeerResult:
    return {
        "system": system,
        "jobs": jobs,
        "enqueue_per_s": round(jobs / enqueue_s, 1),
        "drain_per_s": round(jobs / drain.elapsed_s, 1),
        "peak_rss_mb": round(drain.rss_mb_sum, 1),
    }
