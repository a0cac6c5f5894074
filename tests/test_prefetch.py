"""The auto prefetch: a deep buffer for short jobs, none for slow ones; config checks."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import stalwart
from stalwart.config import load_config
from stalwart.errors import ConfigError
from stalwart.processes import Worker
from stalwart.processes.prefetch import AUTO_CAP, PrefetchSize
from tests.helpers import running, wait_for


def test_auto_sizes_the_buffer_to_about_fifty_ms_of_work() -> None:
    size = PrefetchSize("auto", threads=5)
    assert size.current == 5  # nothing known yet: a claim's worth per thread
    for _ in range(200):
        size.observe(0.00002)  # 20 µs jobs: far more than 200 in 50 ms
    assert size.current == AUTO_CAP
    for _ in range(400):
        size.observe(0.010)  # 10 ms jobs, 5 threads: 500 jobs/s -> 25 in 50 ms
    assert 20 <= size.current <= 30
    for _ in range(400):
        size.observe(1.0)  # slow jobs: nothing waits, they stay spread over workers
    assert size.current == 0


def test_a_fixed_prefetch_never_moves() -> None:
    size = PrefetchSize(7, threads=2)
    for _ in range(100):
        size.observe(0.00001)
    assert size.current == 7 and size.most == 7


@pytest.mark.parametrize("bad", [-1, "lots", 1.5, True, 100_001])
def test_a_bad_prefetch_is_refused_by_the_worker(bad: object, app: stalwart.App) -> None:
    with pytest.raises(ValueError, match="auto"):
        Worker(app, prefetch=bad)  # type: ignore[arg-type]


def test_auto_workers_run_every_job_exactly_once_and_buffer_short_ones(
    app: stalwart.App,
) -> None:
    runs = Counter[int]()
    lock = threading.Lock()

    @app.task
    def record(n: int) -> None:
        with lock:
            runs[n] += 1

    app.enqueue_many(record, [((n,), {}) for n in range(3000)])
    workers = [Worker(app, threads=3, prefetch="auto", polling_interval=0.01) for _ in range(2)]
    with running(*workers):
        wait_for(lambda: not app.store.jobs_any_pending(), timeout=120)
    assert sorted(runs) == list(range(3000)) and set(runs.values()) == {1}
    # Short jobs: the buffer grew past the threads' own claim.
    assert max(w.prefetch for w in workers) > 3


def test_auto_does_not_buffer_slow_jobs(app: stalwart.App) -> None:
    @app.task
    def slow() -> None:
        time.sleep(0.2)

    for _ in range(4):
        slow.enqueue()
    worker = Worker(app, threads=2, prefetch="auto", polling_interval=0.01)
    with running(worker):
        wait_for(lambda: not app.store.jobs_any_pending(), timeout=60)
    assert worker.prefetch == 0


def test_config_takes_auto_or_a_count_and_names_a_bad_value(tmp_path: Path) -> None:
    path = tmp_path / "stalwart.toml"
    path.write_text("[[workers]]\nprocesses = 2\n")
    assert load_config(path).workers[0].prefetch == "auto"
    path.write_text("[[workers]]\nprefetch = 50\n")
    assert load_config(path).workers[0].prefetch == 50
    path.write_text('[[workers]]\nprefetch = "lots"\n')
    with pytest.raises(ConfigError, match=r"workers\[0\]\.prefetch: expected \"auto\""):
        load_config(path)
