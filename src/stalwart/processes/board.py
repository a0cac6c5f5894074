"""Which jobs a worker process is running, in memory it shares with its supervisor.

When a worker dies, its supervisor must know which of the jobs it held were running —
the only ones that can have killed it — and which were merely claimed or prefetched. A
write to the database per job start would cost a round trip per job; instead each
worker child writes the id of every job it starts into a cell of a shared memory map
(and zero when it ends): a few nanoseconds, and still readable by the parent after the
child died, however it died.
"""

from __future__ import annotations

import mmap
import struct

_CELL = struct.Struct("q")


class RunningBoard:
    """``cells`` slots of job ids; made by the supervisor before it forks the worker."""

    def __init__(self, cells: int) -> None:
        self.cells = max(1, cells)
        # Anonymous and shared (MAP_SHARED): the forked child writes, the parent reads.
        self._map = mmap.mmap(-1, _CELL.size * self.cells)
        self._free = list(range(self.cells))
        self._at: dict[int, int] = {}

    # ---- the worker's side (called under its pool's lock) ----

    def mark(self, job_id: int) -> None:
        if not self._free:  # more running than cells: cannot happen; never block on it
            return
        cell = self._free.pop()
        self._at[job_id] = cell
        _CELL.pack_into(self._map, cell * _CELL.size, job_id)

    def clear(self, job_id: int) -> None:
        cell = self._at.pop(job_id, None)
        if cell is not None:
            _CELL.pack_into(self._map, cell * _CELL.size, 0)
            self._free.append(cell)

    # ---- the supervisor's side ----

    def running(self) -> list[int]:
        """The jobs marked running now (after the child died: when it died)."""
        ids = (_CELL.unpack_from(self._map, i * _CELL.size)[0] for i in range(self.cells))
        return sorted(i for i in ids if i)

    def reset(self) -> None:
        """Empty every cell (before a new child starts on this board)."""
        self._map[:] = bytes(len(self._map))
        self._free = list(range(self.cells))
        self._at = {}
