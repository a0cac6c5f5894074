"""Loaded (via PYTHONPATH) only by the processes tests/test_clock.py runs under
libfaketime: Debian's libfaketime 0.9.10, faking the wall clock alone, makes CPython's
time.sleep fail with EINVAL (it sleeps with clock_nanosleep on CLOCK_MONOTONIC to an
absolute deadline, which the library shifts by the fake offset). Sleeps wait on an
Event instead, which waits the same time and works under it."""

import threading
import time


def _sleep(seconds: float) -> None:
    if seconds > 0:
        threading.Event().wait(seconds)


time.sleep = _sleep
