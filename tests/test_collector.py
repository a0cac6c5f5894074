"""The garbage collector around import and fork (collector.py)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

from stalwart.collector import fork_frozen, paused


def test_importing_stalwart_leaves_the_collector_as_it_found_it() -> None:
    code = (
        "import gc, sys; gc.disable() if sys.argv[1] == 'off' else None; "
        "import stalwart.cli; print(gc.isenabled())"
    )
    for state, expected in (("on", "True"), ("off", "False")):
        out = subprocess.run(
            [sys.executable, "-c", code, state], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == expected


def test_paused_restores_the_collector_even_on_an_error() -> None:
    assert gc.isenabled()
    try:
        with paused():
            assert not gc.isenabled()
            raise ValueError("boom")
    except ValueError:
        pass
    assert gc.isenabled()


def test_a_forked_child_collects_but_never_walks_what_it_inherited() -> None:
    read_end, write_end = os.pipe()
    pid = fork_frozen()
    if pid == 0:  # the child
        os.write(write_end, f"{gc.isenabled()} {gc.get_freeze_count()}".encode())
        os._exit(0)
    enabled, frozen = os.read(read_end, 64).decode().split()
    os.waitpid(pid, 0)
    gc.unfreeze()  # the test process thaws what the fork froze in it
    assert enabled == "True"
    assert int(frozen) > 1000  # the whole interpreter's objects, not a handful
