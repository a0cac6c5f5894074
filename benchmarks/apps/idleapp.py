"""The app of benchmarks/idle_fleet.py: one task that says when it started, and a count
of every statement each process sends through SQLAlchemy, written to
$IDLE_COUNT_DIR/<pid> twice a second (the benchmark sums the files)."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

import stalwart

app = stalwart.App()
_sent = [0]


@event.listens_for(Engine, "before_cursor_execute")
def _count(*_: Any) -> None:
    _sent[0] += 1


@app.task(name="idle.started")
def started() -> float:
    return time.time()


def _write_counts() -> None:
    where = os.environ.get("IDLE_COUNT_DIR")
    if not where:
        return
    path = os.path.join(where, str(os.getpid()))

    def loop() -> None:
        while True:
            with open(path + ".tmp", "w") as fh:
                fh.write(str(_sent[0]))
            os.replace(path + ".tmp", path)
            time.sleep(0.5)

    threading.Thread(target=loop, daemon=True).start()


_write_counts()
os.register_at_fork(after_in_child=_write_counts)
