"""An application for the process tests: started by `stalwart start` in a subprocess.

Every execution appends a line to $STALWART_TEST_LOG: "<event> <job id> <pid>", so a
test can count runs per job and tell which process ran them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from datetime import timedelta

import stalwart

app = stalwart.App()


def record(event: str, key: str = "-") -> None:
    job = stalwart.current_job()
    line = f"{event} {job.id} {os.getpid()} {time.time():.6f} {key}\n".encode()
    fd = os.open(os.environ["STALWART_TEST_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, line)  # one write with O_APPEND: lines never interleave
    finally:
        os.close(fd)


@app.task(name="proc.sleep")
def sleep(seconds: float) -> str:
    record("start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.02)
    record("end")
    return "slept"


@app.task(name="proc.cooperative")
def cooperative(seconds: float) -> str:
    """Stops early when the worker is shutting down, and asks to run again."""
    record("start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stalwart.current_job().shutting_down:
            record("interrupted")
            raise stalwart.Snooze(0)
        time.sleep(0.02)
    record("end")
    return "done"


@app.task(name="proc.kill_own_worker")
def kill_own_worker() -> None:
    record("start")
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(name="proc.noop", queue_name="default")
def noop(n: int) -> int:
    record("start")
    record("end")
    return n


@app.task(name="proc.fail_on_crash", on_crash="fail")
def fail_on_crash(seconds: float) -> None:
    record("start")
    time.sleep(seconds)


@app.task(
    name="proc.limited",
    concurrency=stalwart.Limit(to=2, key=lambda key, seconds: key, duration=timedelta(seconds=60)),
)
def limited(key: str, seconds: float) -> None:
    record("start", key)
    time.sleep(seconds)
    record("end", key)


@app.task(
    name="proc.limited_short",
    concurrency=stalwart.Limit(to=1, key=lambda key, seconds: key, duration=timedelta(seconds=2)),
)
def limited_short(key: str, seconds: float) -> None:
    record("start", key)
    time.sleep(seconds)
    record("end", key)


@app.task(name="proc.flaky_once", retry=stalwart.Retry(attempts=2, base=1.0, jitter=False))
def flaky_once(n: int) -> None:
    """Fails its first attempt; its retry is due 1 s later."""
    record("start")
    if stalwart.current_job().attempt == 1:
        raise RuntimeError("first attempt fails")
    record("end")


# ---- job control ----


@app.task(name="proc.busy", timeout=1)
def busy(seconds: float) -> None:
    """A pure-Python busy loop: a timeout is raised in it."""
    record("start")
    deadline = time.monotonic() + seconds
    n = 0
    while time.monotonic() < deadline:
        n += 1
    record("end")


@app.task(name="proc.stuck", timeout=1)
def stuck(seconds: float) -> None:
    """Blocked in C (one long sleep): no exception reaches it; its worker is recycled."""
    record("start")
    time.sleep(seconds)
    record("end")


@app.task(name="proc.async_sleep", timeout=1)
async def async_sleep(seconds: float) -> None:
    record("start")
    await asyncio.sleep(seconds)
    record("end")


@app.task(name="proc.polite", retry=stalwart.Retry(attempts=3, base=0))
def polite(seconds: float) -> str:
    """Stops by itself when cancelled (cooperative)."""
    record("start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if stalwart.current_job().cancelled:
            record("cancelled")
            return "stopped early"
        time.sleep(0.01)
    record("end")
    return "done"


@app.task(name="proc.spin", retry=stalwart.Retry(attempts=3, base=0))
def spin(seconds: float) -> None:
    """Ignores cancels: Cancelled is raised in it."""
    record("start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        pass
    record("end")


@app.task(name="proc.async_wait", retry=stalwart.Retry(attempts=3, base=0))
async def async_wait(seconds: float) -> None:
    record("start")
    await asyncio.sleep(seconds)
    record("end")


@app.task(name="proc.crasher", max_crashes=3)
def crasher() -> None:
    """Kills its own process (os._exit): whatever runs beside it dies with it."""
    record("start")
    time.sleep(0.3)
    os._exit(1)


@app.task(
    name="proc.rated", rate_limit=stalwart.Rate(5, per=timedelta(seconds=1), key=lambda key: key)
)
def rated(key: str) -> None:
    record("start", key)


@app.task(name="proc.expiring", expires=timedelta(seconds=1))
def expiring(n: int) -> None:
    record("start")


# ---- workflows ----


@app.task(name="proc.tick")
def tick(n: int) -> int:
    """Does nothing: a batch of these ends within microseconds of each other."""
    return n


@app.task(name="proc.slow_tick")
def slow_tick(seconds: float) -> None:
    time.sleep(seconds)


@app.task(name="proc.fail_if")
def fail_if(fail: bool) -> None:
    if fail:
        raise ValueError("asked to fail")


@app.task(name="proc.batch_callback")
def batch_callback(kind: str, batch_id: int) -> None:
    """A batch's callback: records "cb_<kind>" with the batch id as its key."""
    record(f"cb_{kind}", str(batch_id))


@app.task(name="proc.fan_out")
def fan_out(n: int) -> None:
    stalwart.current_job().batch.enqueue_many([slow_tick.prepare(0.01) for _ in range(n)])


@app.task(name="proc.step")
def step(name: str) -> dict[str, object]:
    record("step", name)
    results = stalwart.current_job().dependency_results
    return {"name": name, "seen": sorted(v["name"] for v in results.values() if v)}


@app.task(name="proc.add")
def add(n: int, previous: int = 0) -> int:
    record("add", str(n))
    return previous + n


@app.task(name="proc.db_time")
def db_time() -> str:
    """The database's own time as the job runs (the clock tests: the host's may lie)."""
    record("start")
    return app.store.clock_read().isoformat()
