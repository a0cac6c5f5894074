"""`stalwart bench`: capacity planning — throughput and latency per worker setting.

For each setting of a sweep (processes x threads) the bench forks that many real worker
processes (the same `Worker` and child set-up the supervisor uses), waits until they are
registered, enqueues N jobs on a queue of its own, and waits until every job has ended.
Then, per setting:

- **throughput**: jobs / (last job finished - first job enqueued), from the stored times;
- **latency**: enqueued → finished of each job (what the user of a job waits for: the
  response time), p50/p75/p90/p95/p99; **run** is started → finished (the task itself);
- **CPU %**: CPU time of the worker processes over that same window, from
  ``/proc/<pid>/stat`` (100 % = one core busy); without /proc, their whole-life CPU time
  from ``wait4``;
- **peak RSS**: the sum of the worker processes' peak resident memory (``wait4``).

A second table gives the change, in %, from each setting to the next, so an operator
sees where adding workers stops paying: the question of the seed study ("YJIT有効化後に
Unicornワーカーを増やした場合"), asked of job workers.

By default the N jobs are enqueued at once (a backlog: latency is then mostly the time a
job waits behind the others); ``rate`` enqueues them steadily instead, to see the
latency at a given load.  Bench jobs stay in the database as finished jobs, on a queue
named ``stalwart-bench-<id>``, and go with the usual retention
(``clear_finished_jobs_after``).

The tables, JSON and plot are in `bench_report` (re-exported here). This module stays
near 480 lines: the options and the measured run (forking, polling, reaping workers)
are one sequence, easier to follow in one place.
"""

from __future__ import annotations

import contextlib
import math
import os
import resource
import signal
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .bench_report import (
    COLUMNS,
    PERCENTILES,
    BenchTask,
    Setting,
    SettingResult,
    change_percent,
    changes,
    check_plot_available,
    plot,
    render,
    stops_paying,
    to_json,
)
from .errors import ConfigError, StalwartError
from .importing import import_attribute
from .percentiles import percentile
from .processes.fork import fork_actor
from .processes.worker import Worker
from .results import JobResult, JobStatus
from .store import QueueSelector
from .tasks import Task

if TYPE_CHECKING:
    from .app import App

__all__ = [
    "COLUMNS",
    "NOOP_TASK",
    "PERCENTILES",
    "SLEEP_TASK",
    "BenchError",
    "BenchTask",
    "Setting",
    "SettingResult",
    "change_percent",
    "changes",
    "check_plot_available",
    "import_attribute",
    "noop",
    "other_workers",
    "parse_sweep",
    "plot",
    "prepare",
    "render",
    "resolve_task",
    "run_setting",
    "run_sweep",
    "sleep",
    "stops_paying",
    "to_json",
]

NOOP_TASK = "stalwart.bench.noop"
# Bench queues are "stalwart-bench-" and 10 hex digits: a worker whose patterns match
# this name takes their jobs too.
BENCH_QUEUE_PROBE = "stalwart-bench-?"
SLEEP_TASK = "stalwart.bench.sleep"
ENQUEUE_CHUNK = 5_000
# How often the parent looks whether the workers are up / the jobs are done.
POLL_S = 0.02
WORKERS_UP_TIMEOUT_S = 60.0


class BenchError(StalwartError):
    """The bench could not run (a worker died, a bad option)."""


def noop() -> None:
    """The ``noop`` bench task."""


def sleep(ms: float) -> None:
    """The ``sleep:MS`` bench task."""
    time.sleep(ms / 1000.0)


# ---- options ----


def parse_sweep(text: str) -> list[Setting]:
    """``"1x1,1x4,2x4"`` → settings (processes x threads), in the order given."""
    settings = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        procs, sep, threads = part.lower().partition("x")
        if not sep or not procs.isdigit() or not threads.isdigit():
            raise ValueError(f"sweep: {part!r} is not PROCESSESxTHREADS, e.g. 2x4")
        setting = Setting(int(procs), int(threads))
        if not 1 <= setting.processes <= 256 or not 1 <= setting.threads <= 1000:
            raise ValueError(f"sweep: {part!r}: processes 1-256 and threads 1-1000")
        settings.append(setting)
    if not settings:
        raise ValueError("sweep: give at least one setting, e.g. 1x1,1x4,2x4,4x4")
    return settings


def resolve_task(
    app: App,
    spec: str,
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> BenchTask:
    """``noop``, ``sleep:MS`` or ``module:function`` → a task registered with *app*.

    A ``module:function`` that is a Stalwart task keeps its name; a plain function is
    registered under ``module.qualname``.  Either is registered with *app* if it is not
    already (the workers are forked from this process, so they know it too).
    """
    kwargs = dict(kwargs or {})
    if spec == "noop":
        _register(app, NOOP_TASK, noop)
        return BenchTask(NOOP_TASK, label="noop")
    if spec.startswith("sleep:"):
        try:
            ms = float(spec[len("sleep:") :])
        except ValueError:
            ms = -1.0
        if not 0 <= ms <= 3_600_000 or math.isnan(ms):
            raise ValueError(f"task: {spec!r}: sleep:MS takes milliseconds, e.g. sleep:20")
        _register(app, SLEEP_TASK, sleep)
        return BenchTask(SLEEP_TASK, (ms,), label=f"sleep {ms:g} ms")
    if ":" not in spec:
        raise ValueError(f"task: {spec!r} is not noop, sleep:MS or module:function")
    try:
        target = import_attribute(spec, "task")
    except ConfigError as exc:
        raise ValueError("; ".join(exc.problems)) from None
    if isinstance(target, Task):
        _register(app, target.name, target.func)
        return BenchTask(target.name, tuple(args), kwargs, label=spec)
    if not callable(target):
        raise ValueError(f"task: {spec!r} is a {type(target).__name__}, not a function")
    name = f"{target.__module__}.{getattr(target, '__qualname__', spec)}"
    _register(app, name, target)
    return BenchTask(name, tuple(args), kwargs, label=spec)


def _register(app: App, name: str, func: Callable[..., Any]) -> None:
    if name not in app.tasks:
        app.task(name=name)(func)


# ---- one setting ----


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a live process so far (Linux /proc), else None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # after "(comm)", which may hold spaces
    ticks = int(fields[11]) + int(fields[12])  # utime, stime: fields 14 and 15
    return ticks / os.sysconf("SC_CLK_TCK")


def _total_cpu(pids: Sequence[int]) -> float | None:
    seconds = [_cpu_seconds(pid) for pid in pids]
    return None if any(s is None for s in seconds) else sum(s for s in seconds if s is not None)


class _Workers:
    """P forked worker processes on one queue; stopped and reaped on exit."""

    def __init__(self, app: App, setting: Setting, queue: str, prefetch: int | str, poll: float):
        self.app, self.setting, self.queue = app, setting, queue
        self.prefetch, self.poll = prefetch, poll
        self.token = uuid.uuid4().hex[:8]
        self.pids: list[int] = []
        self.rusage: list[resource.struct_rusage] = []
        self.started_at = 0.0
        self.lifetime_s = 0.0

    def start(self) -> None:
        self.started_at = time.monotonic()
        for i in range(self.setting.processes):
            self.pids.append(self._fork(f"bench-{self.token}-{i}"))

    def _fork(self, name: str) -> int:
        app, setting, queue = self.app, self.setting, self.queue

        def make() -> Worker:
            return Worker(
                app,
                queues=[queue],
                threads=setting.threads,
                prefetch=self.prefetch,
                polling_interval=self.poll,
                name=name,
            )

        return fork_actor(app, make)

    def wait_registered(self) -> None:
        """Until every worker has registered (connected, pool up), or one has died."""
        names = {f"bench-{self.token}-{i}" for i in range(len(self.pids))}
        deadline = time.monotonic() + WORKERS_UP_TIMEOUT_S
        while time.monotonic() < deadline:
            for pid in self.pids:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    self.pids.remove(pid)
                    code = os.waitstatus_to_exitcode(status)
                    raise BenchError(f"a bench worker exited at start (code {code})")
            up = {p.name for p in self.app.store.processes_list()}
            if names <= up:
                return
            time.sleep(POLL_S)
        raise BenchError(f"the bench workers did not register within {WORKERS_UP_TIMEOUT_S} s")

    def stop(self) -> None:
        """Stop gracefully (SIGTERM, as the supervisor does) and reap, keeping rusage."""
        for pid in self.pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        for pid in self.pids:
            _, _, usage = os.wait4(pid, 0)
            self.rusage.append(usage)
        self.pids = []
        self.lifetime_s = time.monotonic() - self.started_at


def run_setting(
    app: App,
    task: BenchTask,
    setting: Setting,
    jobs: int,
    *,
    rate: float | None = None,
    prefetch: int | str = 0,
    polling_interval: float = 0.1,
) -> SettingResult:
    """Run *jobs* jobs of *task* on *setting* worker processes; measure them."""
    queue = f"stalwart-bench-{uuid.uuid4().hex[:10]}"
    bench_task = app.get_task(task.name).using(queue_name=queue)
    calls = [(task.args, task.kwargs)] * jobs
    workers = _Workers(app, setting, queue, prefetch, polling_interval)
    workers.start()
    try:
        workers.wait_registered()
        cpu_before, window_start = _total_cpu(workers.pids), time.monotonic()
        ids = _enqueue(app, bench_task, calls, rate)
        _wait_done(app, queue, workers)
        cpu_after, window_end = _total_cpu(workers.pids), time.monotonic()
    finally:
        workers.stop()
    if cpu_before is not None and cpu_after is not None:
        cpu_percent = 100.0 * (cpu_after - cpu_before) / (window_end - window_start)
    else:  # no /proc: CPU over the workers' whole life
        cpu = sum(u.ru_utime + u.ru_stime for u in workers.rusage)
        cpu_percent = 100.0 * cpu / max(workers.lifetime_s, 1e-9)
    rss_kib = sum(u.ru_maxrss for u in workers.rusage)
    if sys.platform == "darwin":  # ru_maxrss is bytes there, KiB on Linux
        rss_kib //= 1024
    return _measure(app, setting, ids, cpu_percent, rss_kib / 1024.0)


def _enqueue(
    app: App, task: Task[Any, Any], calls: list[tuple[Any, Any]], rate: float | None
) -> list[int]:
    ids: list[int] = []
    if rate is None:  # all at once: a backlog
        for start in range(0, len(calls), ENQUEUE_CHUNK):
            ids += app.enqueue_many(task, calls[start : start + ENQUEUE_CHUNK]).ids
        return ids
    # Steadily: every few ms, the jobs that are due by now, in one insert.
    began = time.monotonic()
    while len(ids) < len(calls):
        due = min(len(calls), int((time.monotonic() - began) * rate) + 1)
        if due > len(ids):
            ids += app.enqueue_many(task, calls[len(ids) : due]).ids
        time.sleep(min(0.01, 1.0 / rate))
    return ids


def _wait_done(app: App, queue: str, workers: _Workers) -> None:
    """Until no job of *queue* is ready, blocked or running (finished, failed, or
    waiting to be retried: each has ended its attempt)."""
    while True:
        stats = [q for q in app.store.queues_overview() if q.name == queue]
        if not any(q.ready or q.running or q.blocked for q in stats):
            return
        for pid in workers.pids:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done:
                workers.pids.remove(pid)
                raise BenchError("a bench worker died while jobs were left")
        time.sleep(POLL_S)


def _measure(
    app: App, setting: Setting, ids: list[int], cpu_percent: float, rss_mb: float
) -> SettingResult:
    results: list[JobResult] = []
    for start in range(0, len(ids), 500):
        rows = app.store.jobs_get(ids[start : start + 500])
        results += [JobResult.from_row(r) for r in rows]
    # (enqueued, started, finished) of every job that succeeded
    ok = [
        (r.enqueued_at, r.started_at, r.finished_at)
        for r in results
        if r.status == JobStatus.SUCCESSFUL and r.enqueued_at and r.started_at and r.finished_at
    ]
    latency = [(fin - enq).total_seconds() * 1000.0 for enq, _, fin in ok]
    run = [(fin - sta).total_seconds() * 1000.0 for _, sta, fin in ok]
    elapsed = 0.0
    if ok:
        first = min(enq for enq, _, _ in ok)
        last = max(fin for _, _, fin in ok)
        elapsed = (last - first).total_seconds()
    return SettingResult(
        setting=setting,
        jobs=len(ids),
        failed=len(ids) - len(ok),
        elapsed_s=elapsed,
        throughput=len(ok) / elapsed if elapsed > 0 else 0.0,
        latency_ms={p: _percentile(latency, p) for p in PERCENTILES},
        run_ms={p: _percentile(run, p) for p in (50, 99)},
        cpu_percent=cpu_percent,
        peak_rss_mb=rss_mb,
    )


def _percentile(values: Sequence[float], p: float) -> float:
    """`percentile`, NaN where no job succeeded (shown as "-", null in JSON)."""
    value = percentile(values, p)
    return math.nan if value is None else value


# ---- the sweep ----


def prepare(app: App) -> None:
    """Keep finished jobs: their times are the measurement. (`stalwart bench` checks the
    schema first, with `cli.common.require_migrated`.)"""
    # In this process's store, and in the config the forked workers make theirs from.
    app.config = replace(app.config, preserve_finished_jobs=True)
    app.store.preserve_finished_jobs = True


def other_workers(app: App) -> list[str]:
    """Live workers of others that would take jobs from a ``stalwart-bench-*`` queue."""
    stale = {
        row.id for row in app.store.processes_stale(timedelta(seconds=app.config.alive_threshold))
    }
    names = []
    for row in app.store.processes_list():
        if row.id in stale:  # a dead process not pruned yet
            continue
        queues = row.metadata.get("queues") if row.kind == "worker" else None
        if not isinstance(queues, list):
            continue
        patterns = tuple(q for q in queues if isinstance(q, str))
        if QueueSelector(patterns).matches(BENCH_QUEUE_PROBE):
            names.append(row.name)
    return names


def run_sweep(
    app: App,
    task: BenchTask,
    settings: Sequence[Setting],
    jobs: int,
    *,
    rate: float | None = None,
    prefetch: int | str = 0,
    polling_interval: float = 0.1,
    progress: Callable[[SettingResult], None] | None = None,
) -> list[SettingResult]:
    results = []
    for setting in settings:
        result = run_setting(
            app,
            task,
            setting,
            jobs,
            rate=rate,
            prefetch=prefetch,
            polling_interval=polling_interval,
        )
        results.append(result)
        if progress is not None:
            progress(result)
    return results
