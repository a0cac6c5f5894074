"""The cyclic garbage collector around start-up and fork.

Importing Stalwart (SQLAlchemy with it) makes many objects and frees almost none: the
collector's passes over them were a fifth of a command's start-up, for nothing. It is
paused while our modules import. `stalwart start` pauses it through its whole set-up
(the app, the driver, the first connection), then freezes what it made, and the
supervisor freezes what it holds before each fork (`gc.freeze`, as Python's `gc` docs
advise for a forking server): a child's collections never walk the objects it
inherited (less work per collection in a busy worker, no copy-on-write of pages it
only reads), nor do the supervisor's. The price: a cycle that was already garbage at a
freeze is never freed; the supervisor freezes at start and when it replaces a child,
and holds little garbage then.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["fork_frozen", "paused"]


@contextmanager
def paused(*, then_freeze: bool = False) -> Iterator[None]:
    """No collection inside; with ``then_freeze``, what exists at the end is frozen
    before the collector resumes (else its first pass would walk all of it)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if then_freeze:
            gc.freeze()
        if collecting:
            gc.enable()


def fork_frozen() -> int:
    """`os.fork`, after moving every object so far out of the collector's reach."""
    gc.freeze()
    return os.fork()
