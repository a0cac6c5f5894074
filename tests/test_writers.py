"""SQLite writers take turns on a flock beside the database (store/sqlite.py)."""

from __future__ import annotations

import os
import signal
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


def test_a_parent_killed_in_its_turn_leaves_no_lock_behind_in_its_children(
    tmp_path: Path,
) -> None:
    # A supervisor that dies holding its turn: its child, forked after the supervisor's
    # first turn, must not keep the supervisor's open file (and its flock) alive.
    path = str(tmp_path / "jobs.db")
    read_end, write_end = os.pipe()
    parent = os.fork()
    if parent == 0:  # the "supervisor"
        turns = WriterTurns(path)
        with turns.turn():
            pass
        child = os.fork()
        if child == 0:  # its child, which idles
            time.sleep(60)
            os._exit(0)
        with turns.turn():
            os.write(write_end, f"{child:>10}".encode())
            time.sleep(60)
        os._exit(0)
    child = int(os.read(read_end, 10))
    os.kill(parent, signal.SIGKILL)
    os.waitpid(parent, 0)
    taken = threading.Event()

    def take_a_turn() -> None:
        with WriterTurns(path).turn():
            taken.set()

    threading.Thread(target=take_a_turn, daemon=True).start()
    try:
        assert taken.wait(10), "the killed supervisor's flock is still held"
    finally:
        os.kill(child, signal.SIGKILL)


def test_a_reader_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    # WAL mode: a read sees a snapshot beside an open write transaction, so neither
    # the writers' turn nor SQLite's write lock may hold it up.
    from sqlalchemy import text

    from stalwart.store import open_store

    store = open_store(f"sqlite:///{tmp_path / 'jobs.db'}")
    store.migrate()
    writing, done = threading.Event(), threading.Event()

    def writer() -> None:
        def body(conn: object) -> None:
            writing.set()
            done.wait(10)

        store.run(body)  # type: ignore[arg-type]

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(10)
        began = time.monotonic()
        count = store.read(lambda c: c.execute(text("SELECT count(*) FROM stalwart_jobs")).scalar())
        waited = time.monotonic() - began
        assert count == 0
        assert waited < 2.0, f"the read waited {waited:.1f} s for the writer"
        assert not done.is_set()  # the writer still held its transaction throughout
    finally:
        done.set()
        thread.join(10)
        store.dispose()
