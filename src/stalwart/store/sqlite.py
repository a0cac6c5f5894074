"""SQLite's store: the generic verbs, with our writers taking turns on the file.

Chosen once, when the store is built (`open_store`), for a single-writer database.
Its hot statements are the generic ones (sent to the driver as they are, see
`ready.py` and `claimed.py`); what differs is how a write transaction begins: every
one takes the write lock up front (BEGIN IMMEDIATE, set up in `engine.py`), and, before
that, its turn among our writers here.

SQLite's busy handler waits for the write lock by sleeping and retrying (1 ms, 2 ms,
5 ms, ... up to 100 ms), so two busy workers spend much of their time asleep while
the lock is free. Our own write transactions first take an exclusive flock on a file
beside the database: a waiter blocks in the kernel and wakes the moment the holder
lets go. Writers that do not take it (an application enqueueing in its own
transaction, another program) are still kept out by SQLite's lock; the flock only
orders ours.
"""

from __future__ import annotations

import fcntl
import os
import threading
import weakref
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from sqlalchemy import Connection, Engine

from .engine import READS_ONLY
from .generic import Store

# Held while a WriterTurns opens its file, so threads racing to the first turn open it
# once. Made anew in a forked child, in case another thread held it at the fork.
_opening = threading.Lock()
_every_turns: weakref.WeakSet[WriterTurns] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    global _opening
    _opening = threading.Lock()
    # A child's copy of its parent's descriptor shares the parent's open file, and so
    # its flock: were the parent killed holding its turn, the child's copy would keep
    # the lock held for ever and every writer would wait. The child drops it at once.
    for turns in list(_every_turns):
        turns.forget_parent_file()


os.register_at_fork(after_in_child=_after_fork_in_child)


class WriterTurns:
    def __init__(self, database_path: str) -> None:
        self.path = database_path + "-writers"
        self._pid = -1
        self._fd = -1
        self._lock = threading.RLock()
        self._depth = 0
        _every_turns.add(self)

    def forget_parent_file(self) -> None:
        if self._fd >= 0 and self._pid != os.getpid():
            os.close(self._fd)
            self._fd = -1

    @contextmanager
    def turn(self) -> Iterator[None]:
        if self._pid != os.getpid():
            with _opening:
                if self._pid != os.getpid():
                    self._open()
        # The flock belongs to the open file, shared by this process's threads: they
        # take turns on a thread lock first. Reentrant, so a nested turn cannot
        # deadlock; only the outermost takes and gives back the flock.
        with self._lock:
            self._depth += 1
            try:
                if self._depth == 1:
                    fcntl.flock(self._fd, fcntl.LOCK_EX)
                yield
            finally:
                self._depth -= 1
                if self._depth == 0:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open(self) -> None:
        # First use, or first use in a forked child, which opens a file of its own (the
        # parent's was closed just after the fork, `_after_fork_in_child`).
        self._lock = threading.RLock()
        self._depth = 0
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._pid = os.getpid()


class SqliteStore(Store):
    def __init__(self, engine: Engine, **options: Any) -> None:
        super().__init__(engine, **options)
        path = engine.url.database
        self._writers = WriterTurns(path) if path else None

    def transaction(
        self, engine: Engine, *, reads_only: bool = False
    ) -> AbstractContextManager[Connection]:
        if reads_only:
            # A reader needs neither the write lock nor a turn: in WAL mode it reads a
            # snapshot beside the writer (a deferred BEGIN, see engine.py).
            return _begin_reading(engine)
        if self._writers is None:
            return engine.begin()
        return _turn_then_begin(self._writers, engine)


@contextmanager
def _turn_then_begin(writers: WriterTurns, engine: Engine) -> Iterator[Connection]:
    # Only the transaction holds the turn: the pool's check-out and check-in (its reset)
    # come before and after, while the other writers go on.
    with engine.connect() as conn, writers.turn(), conn.begin():
        yield conn


@contextmanager
def _begin_reading(engine: Engine) -> Iterator[Connection]:
    with engine.connect().execution_options(**{READS_ONLY: True}) as conn, conn.begin():
        yield conn
