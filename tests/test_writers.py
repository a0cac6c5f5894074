"""SQLite writers take turns on a flock beside the database (store/sqlite.py)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from stalwart.store.sqlite import WriterTurns


def test_a_forked_child_waits_for_its_parents_turn(tmp_path: Path) -> None:
    # A child sharing the parent's open file would share its flock and not wait.
    turns = WriterTurns(str(tmp_path / "jobs.db"))
    read_end, write_end = os.pipe()
    with turns.turn():
        pid = os.fork()
        if pid == 0:  # the child
            began = time.monotonic()
            with turns.turn():
                os.write(write_end, f"{time.monotonic() - began:.3f}".encode())
            os._exit(0)
        time.sleep(0.5)
    waited = float(os.read(read_end, 64))
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert waited >= 0.4


def test_threads_take_turns_and_a_nested_turn_does_not_deadlock(tmp_path: Path) -> None:
    turns = WriterTurns(str(tmp_path / "jobs.db"))
    inside = 0
    most = 0
    lock = threading.Lock()

    def writer() -> None:
        nonlocal inside, most
        for _ in range(50):
            with turns.turn(), turns.turn():  # nested: the same thread again
                with lock:
                    inside += 1
                    most = max(most, inside)
                time.sleep(0.0005)
                with lock:
                    inside -= 1

    threads = [threading.Thread(target=writer) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert most == 1
