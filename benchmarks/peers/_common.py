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

Pickup latency (`LatencyProbe`) is measured apart from the drain, against ONE idle worker
process of the same peer, started the same way: the parent enqueues one job at a time on
a fixed schedule (20 warm-up jobs, then 200 measured ones, at 100 jobs/s), taking
``time.time()`` right after each enqueue call returns (its commit); the job's first act,
in the worker, is to append its number and ``time.time()`` to a file (`record_start`).
Latency is start - commit; both clocks are the same machine's wall clock.  The warm-up
jobs are not counted: the first job any worker runs pays one-off costs (first imports
on the job path, a poller backed off while idle) that are not what a steady stream of
jobs sees.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, NamedTuple, TypedDict
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

# Pickup latency: this many jobs, one at a time, at this rate, to one idle worker; the
# first LATENCY_WARMUP of them are not counted.
LATENCY_JOBS = 200
LATENCY_WARMUP = 20
LATENCY_RATE = 100.0
# The worker is released this long before the first job, so it is idle in its wait.
LATENCY_SETTLE_S = 0.5
# After the last enqueue, wait at most this long for the last job to start.
LATENCY_WAIT_S = 20.0


class PeerResult(TypedDict):
    system: str
    database: str
    jobs: int
    enqueue_per_s: float
    drain_per_s: float
    peak_rss_mb: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None


class Latency(NamedTuple):
    p50_ms: float
    p99_ms: float


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
    *,
    default_dsn: str = DEFAULT_DSN,
    dsn_help: str = "PostgreSQL DSN",
) -> argparse.Namespace:
    """The shared CLI: ``--dsn``, ``--jobs``, ``--workers``, ``--no-latency`` (+ the hidden
    worker switch).

    *extra* may add peer-specific tuning options; they all need defaults.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dsn", default=default_dsn, help=f"{dsn_help} (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="jobs to enqueue and drain")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS, help="worker processes")
    parser.add_argument(
        "--no-latency", dest="latency", action="store_false", help="skip the pickup latency probe"
    )
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


_start_log: int | None = None


def open_start_log(path: str) -> None:
    """Latency mode, in the worker: jobs append their start to *path* (`record_start`)."""
    global _start_log
    _start_log = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)


def record_start(n: int) -> None:
    """The latency job's body: note job *n*'s start time (wall clock) in the start log.

    One ``write`` of one short line to an O_APPEND file: atomic, so worker threads never
    interleave lines.  Importable as ``_common.record_start`` by peers that name jobs by
    import path (RQ).
    """
    started = time.time()
    if _start_log is None:
        raise RuntimeError("record_start: no start log open in this process")
    os.write(_start_log, f"{int(n)} {started:.6f}\n".encode())


def noop(n: int) -> None:
    """The drain job's body: nothing (importable as ``_common.noop``)."""


def exit_when_parent_lets_go(stop: Callable[[], None] | None = None) -> None:
    """Latency mode: the parent closes our stdin when it is done; end then.

    Peers run their consumer forever in latency mode; this ends it the same way for all
    of them (and also when the parent dies): at once, or by calling *stop* (the peer's
    own graceful stop, which must make the worker's main loop return).
    """

    def watch() -> None:
        sys.stdin.read()  # returns at EOF
        sys.stdout.flush()
        if stop is None:
            os._exit(0)
        stop()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()


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


def _spawn(script: str, opts: dict[str, Any]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, os.path.abspath(script), "--worker", json.dumps(opts)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def _release(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


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
            procs.append(_spawn(script, opts))
        for proc in procs:
            if _read_marked(proc, "ready") != "ready":
                raise RuntimeError("peer worker sent an unexpected message instead of 'ready'")
        started = time.monotonic()
        for proc in procs:
            _release(proc)
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


def percentile(values: Sequence[float], p: float) -> float:
    """The *p*-th percentile (0-100), interpolated between the two nearest ranks."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100.0
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


class LatencyProbe:
    """Pickup latency of one idle worker process (``script --worker`` with *worker_opts*).

    The peer enqueues job ``n`` for ``n in range(probe.jobs)`` (warm-up jobs included:
    the probe leaves them out of the result) one at a time with its
    ordinary single-job enqueue, sleeping ``probe.until(n)`` before each (a fixed
    schedule, so one slow enqueue does not delay the others), and calls
    ``probe.committed(n)`` as soon as the enqueue call returns.  The worker runs the
    peer's consumer (not in drain mode) and the job calls ``record_start(n)`` first thing;
    the worker opens the start log named by ``worker_opts["latency_file"]``.
    """

    def __init__(
        self,
        script: str,
        worker_opts: dict[str, Any],
        *,
        jobs: int = LATENCY_JOBS,
        rate: float = LATENCY_RATE,
        warmup: int = LATENCY_WARMUP,
    ) -> None:
        self.warmup = warmup
        self.jobs = warmup + jobs
        self.interval = 1.0 / rate
        self._script = script
        self._dir = tempfile.mkdtemp(prefix="peer-latency-")
        self._path = os.path.join(self._dir, "starts")
        self._opts = {**worker_opts, "latency_file": self._path}
        self._proc: subprocess.Popen[str] | None = None
        self._commits: dict[int, float] = {}
        self._first_at = 0.0

    def __enter__(self) -> LatencyProbe:
        self._proc = _spawn(self._script, self._opts)
        if _read_marked(self._proc, "ready") != "ready":
            raise RuntimeError("latency worker sent an unexpected message instead of 'ready'")
        _release(self._proc)
        # Whatever the worker prints from now on is read and dropped, so a chatty peer
        # never blocks on a full pipe.
        threading.Thread(target=self._proc.stdout.read, daemon=True).start()  # type: ignore[union-attr]
        self._first_at = time.monotonic() + LATENCY_SETTLE_S
        return self

    def until(self, n: int) -> float:
        """Seconds to wait before enqueueing job *n*."""
        return max(0.0, self._first_at + n * self.interval - time.monotonic())

    def committed(self, n: int) -> None:
        self._commits[n] = time.time()

    def _starts(self) -> dict[int, float]:
        starts: dict[int, float] = {}
        if os.path.exists(self._path):
            with open(self._path) as f:
                for line in f:
                    if line.endswith("\n"):
                        n, at = line.split()
                        starts[int(n)] = float(at)
        return starts

    def result(self) -> Latency:
        """Wait for every job to have started; p50 and p99 of start - commit, in ms."""
        deadline = time.monotonic() + LATENCY_WAIT_S
        starts = self._starts()
        while len(starts) < len(self._commits) and time.monotonic() < deadline:
            if self._proc is not None and self._proc.poll() is not None:
                raise RuntimeError(f"latency worker exited with code {self._proc.returncode}")
            time.sleep(0.05)
            starts = self._starts()
        missing = sorted(set(self._commits) - set(starts))
        if missing:
            raise RuntimeError(f"latency: {len(missing)} job(s) never started, e.g. {missing[:5]}")
        waits = [(starts[n] - self._commits[n]) * 1000.0 for n in self._commits if n >= self.warmup]
        return Latency(round(percentile(waits, 50), 2), round(percentile(waits, 99), 2))

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        proc = self._proc
        if proc is not None:
            if proc.stdin is not None:
                proc.stdin.close()  # the worker exits at EOF (exit_when_parent_lets_go)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self._dir, ignore_errors=True)


def result(
    system: str,
    jobs: int,
    enqueue_s: float,
    drain: DrainOutcome,
    *,
    database: str = "PostgreSQL",
    latency: Latency | None = None,
) -> PeerResult:
    return {
        "system": system,
        "database": database,
        "jobs": jobs,
        "enqueue_per_s": round(jobs / enqueue_s, 1),
        "drain_per_s": round(jobs / drain.elapsed_s, 1),
        "peak_rss_mb": round(drain.rss_mb_sum, 1),
        "latency_p50_ms": latency.p50_ms if latency else None,
        "latency_p99_ms": latency.p99_ms if latency else None,
    }
